//! The parameter-vector view: exact round trip, layout, ids, require_grad, gradients.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use slt_core::params::{flatten, flatten_grads, flatten_to_vec, num_params, write_back, write_back_vec, ParamLayout};
use slt_core::ParamVectorError;

type Inner = burn_ndarray::NdArray<f64>;
type Ad = burn_autodiff::Autodiff<Inner>;

#[derive(Module, Debug)]
struct Block<B: Backend> {
    kernel: Param<Tensor<B, 4>>,
    scale: Param<Tensor<B, 1>>,
}

#[derive(Module, Debug)]
struct Net<B: Backend> {
    first: Param<Tensor<B, 2>>,
    blocks: Vec<Block<B>>,
}

fn net<B: Backend>(device: &B::Device) -> Net<B> {
    let seq = |n: usize, start: f64| (0..n).map(|i| start + i as f64 * 0.5).collect::<Vec<_>>();
    Net {
        first: Param::from_tensor(Tensor::<B, 1>::from_floats(seq(6, 1.0).as_slice(), device).reshape([2, 3])),
        blocks: (0..2)
            .map(|b| Block {
                kernel: Param::from_tensor(
                    Tensor::<B, 1>::from_floats(seq(8, 10.0 * (b + 1) as f64).as_slice(), device).reshape([2, 1, 2, 2]),
                ),
                scale: Param::from_tensor(Tensor::from_floats([-1.0 - b as f64], device)),
            })
            .collect(),
    }
}

#[test]
fn layout_names_shapes_and_offsets() {
    let model = net::<Inner>(&Default::default());
    let layout = ParamLayout::of(&model);
    assert_eq!(layout.len, 6 + 2 * (8 + 1));
    assert_eq!(num_params(&model), layout.len);
    let names: Vec<_> = layout.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["first", "blocks.0.kernel", "blocks.0.scale", "blocks.1.kernel", "blocks.1.scale"]);
    assert_eq!(layout.entries[1].shape, vec![2, 1, 2, 2]);
    let offsets: Vec<_> = layout.entries.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, [0, 6, 14, 15, 23]);
}

#[test]
fn flatten_is_row_major_in_visiting_order_and_round_trips_exactly() {
    let device = Default::default();
    let model = net::<Inner>(&device);
    let flat = flatten_to_vec(&model);
    assert_eq!(&flat[..6], &[1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
    assert_eq!(flat[14], -1.0);
    assert_eq!(flatten(&model).into_data().to_vec::<f64>().unwrap(), flat);

    // Awkward values survive exactly.
    let values: Vec<f64> =
        (0..flat.len()).map(|i| (i as f64 + 0.1).powf(1.7) * if i % 2 == 0 { -1.0 } else { 1.0 } * 1e-3).collect();
    let ids: Vec<_> = ParamLayout::of(&model).entries.iter().map(|e| e.id).collect();
    let model = write_back_vec(model, &values).unwrap();
    assert_eq!(flatten_to_vec(&model), values);
    let ids_after: Vec<_> = ParamLayout::of(&model).entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, ids_after, "parameter ids are kept");
}

#[test]
fn wrong_length_is_an_error() {
    let model = net::<Inner>(&Default::default());
    let err = write_back_vec(model, &[1.0; 3]).unwrap_err();
    assert_eq!(err, ParamVectorError::LengthMismatch { expected: 24, got: 3 });
}

#[test]
fn write_back_keeps_require_grad_and_gradients_flatten_in_layout() {
    let device = Default::default();
    let model = net::<Ad>(&device);
    let d = num_params(&model);
    let coefficients: Vec<f64> = (0..d).map(|i| i as f64 - 7.0).collect();
    let model = write_back(model, Tensor::from_floats(vec![0.25; d].as_slice(), &device)).unwrap();
    // L(w) = Σ cᵢ wᵢ² ⇒ ∂L/∂wᵢ = 2 cᵢ wᵢ = cᵢ / 2 at w = 1/4.
    let c = Tensor::<Ad, 1>::from_floats(coefficients.as_slice(), &device);
    let loss = (flatten(&model).square() * c).sum();
    let grads = loss.backward();
    let g = flatten_grads(&model, &grads).into_data().to_vec::<f64>().unwrap();
    let expected: Vec<f64> = coefficients.iter().map(|c| c / 2.0).collect();
    assert_eq!(g, expected);
}
