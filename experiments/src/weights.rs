//! Model weights as safetensors (readable from PyTorch with `safetensors.torch.load_file`):
//! one f32 tensor per parameter, named by its module path (`hidden.0.weight`). Dense weights are
//! stored `[in, out]`, the transpose of `torch.nn.Linear.weight`.

use std::path::Path;

use anyhow::{bail, Context};
use burn::module::Module;
use burn::tensor::backend::Backend;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use slt_core::params::{flatten_to_vec, write_back_vec, ParamLayout};

/// Saves every float parameter of `model` to `path` (atomically).
pub fn save<B: Backend, M: Module<B>>(model: &M, path: &Path) -> anyhow::Result<()> {
    let layout = ParamLayout::of(model);
    let flat = flatten_to_vec(model);
    let bytes: Vec<Vec<u8>> = layout
        .entries
        .iter()
        .map(|e| {
            flat[e.offset..e.offset + e.len]
                .iter()
                .flat_map(|v| (*v as f32).to_le_bytes())
                .collect()
        })
        .collect();
    let views = layout
        .entries
        .iter()
        .zip(&bytes)
        .map(|(e, b)| Ok((e.name.clone(), TensorView::new(Dtype::F32, e.shape.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let buffer = safetensors::serialize(views, &None)?;
    crate::store::write_atomic(path, &buffer)
}

/// Loads parameters saved by [`save`] into `model` (which fixes names and shapes).
pub fn load<B: Backend, M: Module<B>>(model: M, path: &Path) -> anyhow::Result<M> {
    let buffer = std::fs::read(path).with_context(|| format!("reading weights {}", path.display()))?;
    let tensors = SafeTensors::deserialize(&buffer)
        .with_context(|| format!("{}: not a valid safetensors file", path.display()))?;
    let layout = ParamLayout::of(&model);
    let mut flat = vec![0f64; layout.len];
    for e in &layout.entries {
        let view = tensors.tensor(&e.name).with_context(|| {
            format!("{}: no tensor '{}' (is this the right --model?)", path.display(), e.name)
        })?;
        if view.shape() != e.shape.as_slice() {
            bail!(
                "{}: tensor '{}' has shape {:?}, the model expects {:?} (is this the right --model?)",
                path.display(),
                e.name,
                view.shape(),
                e.shape
            );
        }
        if view.dtype() != Dtype::F32 {
            bail!("{}: tensor '{}' is {:?}, expected F32", path.display(), e.name, view.dtype());
        }
        for (dst, chunk) in flat[e.offset..e.offset + e.len].iter_mut().zip(view.data().chunks_exact(4)) {
            *dst = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as f64;
        }
    }
    Ok(write_back_vec(model, &flat)?)
}
