//! Where H_res stacks come from: seeded random logits ([`logits`]) and the two ways of turning
//! logits into mixing matrices — unconstrained HC (the logits themselves) and mHC
//! ([`sinkhorn()`] of their exponential).

pub mod logits;
pub mod logits_file;
pub mod map;
pub mod probe;
pub mod sinkhorn;

pub use logits::{LogitGenerator, task_rng};
pub use logits_file::read_logits_npy;
pub use map::HresMap;
pub use sinkhorn::{SinkhornOrder, SinkhornParams, sinkhorn, sinkhorn_4_many, sinkhorn_in_place};

use ndarray::Array4;

use crate::stack::LayerStack;

/// The mHC stack for a stack of logits: every matrix replaced by `sinkhorn(logits, params)`.
/// HC uses the logits unchanged, so the two methods compare the same draw.
pub fn mhc_stack(logits: &LayerStack, params: &SinkhornParams) -> LayerStack {
    let n = logits.streams();
    let mut data: Array4<f64> = logits.as_array().clone();
    let flat = data
        .as_slice_mut()
        .expect("LayerStack keeps standard layout");
    if n == 4 {
        sinkhorn_4_many(flat, params);
    } else {
        for matrix in flat.chunks_exact_mut(n * n) {
            sinkhorn_in_place(matrix, n, params);
        }
    }
    LayerStack::new(data, "Sinkhorn output")
        .expect("Sinkhorn of finite logits is finite, non-negative and square")
}
