//! Model weights as safetensors (readable from PyTorch with `safetensors.torch.load_file`):
//! one f32 tensor per parameter, named by its module path (`hidden.0.weight`). Dense weights are
//! stored `[in, out]`, the transpose of `torch.nn.Linear.weight`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use burn::module::Module;
use burn::tensor::backend::Backend;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use slt_core::params::{flatten_to_vec, write_back_vec, ParamLayout};

/// A named f32 tensor ready to serialise.
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub bytes: Vec<u8>,
}

impl NamedTensor {
    /// A tensor from f64 values stored as f32 (exact for values that came from f32 tensors).
    pub fn from_f64(name: &str, shape: Vec<usize>, values: &[f64]) -> Self {
        Self {
            name: name.to_string(),
            shape,
            dtype: Dtype::F32,
            bytes: values.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect(),
        }
    }

    /// A tensor stored as f64 (optimiser state, so that a resumed run is bit-identical).
    pub fn from_f64_exact(name: &str, shape: Vec<usize>, values: &[f64]) -> Self {
        Self {
            name: name.to_string(),
            shape,
            dtype: Dtype::F64,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Every float parameter of `model` as named tensors.
pub fn named_tensors<B: Backend, M: Module<B>>(model: &M) -> Vec<NamedTensor> {
    let layout = ParamLayout::of(model);
    let flat = flatten_to_vec(model);
    layout
        .entries
        .iter()
        .map(|e| NamedTensor::from_f64(&e.name, e.shape.clone(), &flat[e.offset..e.offset + e.len]))
        .collect()
}

/// Serialises `tensors` with `metadata` to `path`, atomically.
pub fn write_file(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: Option<HashMap<String, String>>,
) -> anyhow::Result<()> {
    let views = tensors
        .iter()
        .map(|t| Ok((t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let buffer = safetensors::serialize(views, &metadata)?;
    crate::store::write_atomic(path, &buffer)
}

/// Reads the f32 tensor `name` of `tensors` (from file `path`) as f64 values, checking its shape.
pub fn read_tensor(tensors: &SafeTensors, path: &Path, name: &str, shape: &[usize]) -> anyhow::Result<Vec<f64>> {
    let view = tensors
        .tensor(name)
        .with_context(|| format!("{}: no tensor '{name}' (is this the right --model?)", path.display()))?;
    if view.shape() != shape {
        bail!(
            "{}: tensor '{name}' has shape {:?}, the model expects {shape:?} (is this the right --model?)",
            path.display(),
            view.shape()
        );
    }
    match view.dtype() {
        Dtype::F32 => {
            Ok(view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect())
        }
        Dtype::F64 => {
            Ok(view.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
        }
        other => bail!("{}: tensor '{name}' is {other:?}, expected F32 or F64", path.display()),
    }
}

/// Writes the parameters stored in `tensors` (from file `path`) into `model`.
pub fn fill_model<B: Backend, M: Module<B>>(model: M, tensors: &SafeTensors, path: &Path) -> anyhow::Result<M> {
    let layout = ParamLayout::of(&model);
    let mut flat = Vec::with_capacity(layout.len);
    for e in &layout.entries {
        let values = read_tensor(tensors, path, &e.name, &e.shape)?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            bail!("{}: tensor '{}' holds a non-finite value ({} at flat index {i})", path.display(), e.name, values[i]);
        }
        flat.extend(values);
    }
    Ok(write_back_vec(model, &flat)?)
}

/// Reads and parses a safetensors file.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let buffer = std::fs::read(path).with_context(|| format!("reading weights {}", path.display()))?;
    SafeTensors::deserialize(&buffer).with_context(|| format!("{}: not a valid safetensors file", path.display()))?;
    Ok(buffer)
}

/// Saves every float parameter of `model` to `path` (atomically).
pub fn save<B: Backend, M: Module<B>>(model: &M, path: &Path) -> anyhow::Result<()> {
    write_file(path, &named_tensors(model), None)
}

/// Loads parameters saved by [`save`] into `model`, which fixes names and shapes: the file must
/// hold exactly the model's tensors (none missing, none extra, each of the model's shape) with
/// finite values; an error names the tensor.
pub fn load<B: Backend, M: Module<B>>(model: M, path: &Path) -> anyhow::Result<M> {
    let buffer = read_file(path)?;
    let tensors = SafeTensors::deserialize(&buffer)?;
    let layout = ParamLayout::of(&model);
    let mut extra: Vec<String> =
        tensors.names().into_iter().filter(|n| !layout.entries.iter().any(|e| &e.name == *n)).cloned().collect();
    if !extra.is_empty() {
        extra.sort();
        bail!(
            "{}: holds tensors the model does not have: {} (is this the right --model? it expects {})",
            path.display(),
            extra.join(", "),
            layout.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    fill_model(model, &tensors, path)
}
