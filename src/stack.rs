//! [`LayerStack`]: the validated input of every analysis.
//!
//! A stack holds one n×n matrix H_res(l, t) per layer l and token t, in f64, with the convention
//! `x_{l+1} = H_l x_l`: **rows are output streams, columns are input streams**. Loaders and
//! generators both produce a `LayerStack`; nothing downstream re-checks shapes or finiteness.

use ndarray::{Array3, Array4, ArrayView2, ArrayView4, ArrayViewD, Axis, Ix3, Ix4};

use crate::error::StackError;

/// Matrices `[layers, tokens, n, n]` in f64: non-empty, square and finite (checked in [`LayerStack::new`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStack {
    data: Array4<f64>,
}

impl LayerStack {
    /// Validates `data` (`[layers, tokens, n, n]`). `what` names the source in error messages
    /// (a file and tensor name, or "generated logits").
    pub fn new(data: Array4<f64>, what: &str) -> Result<Self, StackError> {
        Self::validate(data.view(), what)?;
        let data = if data.is_standard_layout() {
            data
        } else {
            data.as_standard_layout().into_owned()
        };
        Ok(Self { data })
    }

    /// The checks of [`Self::new`] on a view, without copying: no empty axis, square matrices,
    /// finite values.
    pub fn validate(data: ArrayView4<'_, f64>, what: &str) -> Result<(), StackError> {
        let shape = data.shape();
        let shape = [shape[0], shape[1], shape[2], shape[3]];
        if shape.contains(&0) {
            return Err(StackError::Empty {
                what: what.to_string(),
                shape,
            });
        }
        if shape[2] != shape[3] {
            return Err(StackError::NotSquare {
                what: what.to_string(),
                rows: shape[2],
                cols: shape[3],
            });
        }
        // The plain scan first (the index search walks four nested indices, ten times slower).
        if data.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        if let Some((index, &value)) = data.indexed_iter().find(|(_, v)| !v.is_finite()) {
            let (layer, token, row, col) = index;
            return Err(StackError::NonFinite {
                what: what.to_string(),
                layer: layer + 1,
                token,
                row,
                col,
                value,
            });
        }
        Ok(())
    }

    /// A stack with one token per layer from `[layers, n, n]`.
    pub(crate) fn from_layers(layers: Array3<f64>, what: &str) -> Result<Self, StackError> {
        Self::new(layers.insert_axis(Axis(1)), what)
    }

    /// Accepts rank 3 `[layers, n, n]` or rank 4 `[layers, tokens, n, n]`.
    pub(crate) fn from_dynamic(array: ArrayViewD<'_, f64>, what: &str) -> Result<Self, StackError> {
        match array.ndim() {
            3 => {
                let a = array
                    .into_dimensionality::<Ix3>()
                    .map_err(|_| wrong_rank(what, &[], ""))?;
                Self::from_layers(a.to_owned(), what)
            }
            4 => {
                let a = array
                    .into_dimensionality::<Ix4>()
                    .map_err(|_| wrong_rank(what, &[], ""))?;
                Self::new(a.to_owned(), what)
            }
            _ => Err(wrong_rank(what, array.shape(), "")),
        }
    }

    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.data.shape()[0]
    }

    /// Number of tokens T (1 for input-independent matrices).
    pub fn tokens(&self) -> usize {
        self.data.shape()[1]
    }

    /// Number of streams n.
    pub fn streams(&self) -> usize {
        self.data.shape()[2]
    }

    /// H(l, t) for a **0-based** layer index and token.
    pub fn matrix(&self, layer_index: usize, token: usize) -> ArrayView2<'_, f64> {
        self.data.slice(ndarray::s![layer_index, token, .., ..])
    }

    /// The token-`t` matrices of every layer, in layer order (row-major n×n slices).
    pub fn token_slices(&self, token: usize) -> Vec<&[f64]> {
        let n2 = self.streams() * self.streams();
        let tokens = self.tokens();
        let flat = self
            .data
            .as_slice()
            .expect("LayerStack keeps standard layout (enforced in new)");
        (0..self.layers())
            .map(|l| {
                let start = (l * tokens + token) * n2;
                &flat[start..start + n2]
            })
            .collect()
    }

    /// Each layer's matrix averaged over tokens, `(1/T)·Σ_t H_l(t)` (row-major n×n), in layer
    /// order.
    pub(crate) fn token_mean_matrices(&self) -> Vec<Vec<f64>> {
        let n2 = self.streams() * self.streams();
        let tokens = self.tokens();
        (0..self.layers())
            .map(|l| {
                let mut mean = vec![0.0; n2];
                for token in 0..tokens {
                    for (x, y) in mean.iter_mut().zip(self.matrix(l, token).iter()) {
                        *x += y;
                    }
                }
                mean.iter_mut().for_each(|x| *x /= tokens as f64);
                mean
            })
            .collect()
    }

    /// The whole array `[layers, tokens, n, n]`.
    pub fn as_array(&self) -> &Array4<f64> {
        &self.data
    }

    /// The array, consuming the stack.
    pub(crate) fn into_array(self) -> Array4<f64> {
        self.data
    }

    /// A new stack with every matrix transposed (for layouts that store H_resᵀ).
    pub fn transposed(&self) -> Self {
        let mut data = self.data.clone();
        data.swap_axes(2, 3);
        Self {
            data: data.as_standard_layout().into_owned(),
        }
    }
}

/// The error for an array of a rank the stack does not accept.
pub(crate) fn wrong_rank(what: &str, shape: &[usize], extra: &str) -> StackError {
    StackError::WrongRank {
        what: what.to_string(),
        rank: shape.len(),
        shape: shape.to_vec(),
        extra: extra.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn rejects_empty_non_square_and_non_finite() {
        let empty = Array4::<f64>::zeros((0, 1, 4, 4));
        assert!(matches!(
            LayerStack::new(empty, "x"),
            Err(StackError::Empty { .. })
        ));
        let rect = Array4::<f64>::zeros((2, 1, 3, 4));
        assert!(matches!(
            LayerStack::new(rect, "x"),
            Err(StackError::NotSquare {
                rows: 3,
                cols: 4,
                ..
            })
        ));
        let mut bad = Array4::<f64>::zeros((3, 2, 2, 2));
        bad[[2, 1, 0, 1]] = f64::NAN;
        let err = LayerStack::new(bad, "f.npy").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.npy: non-finite value NaN at layer 3, token 1, entry [0, 1]"
        );
    }

    #[test]
    fn token_slices_follow_layer_order() {
        let data = Array4::from_shape_fn((3, 2, 2, 2), |(l, t, i, j)| {
            (l * 1000 + t * 100 + i * 10 + j) as f64
        });
        let stack = LayerStack::new(data, "x").unwrap();
        let slices = stack.token_slices(1);
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[2], &[2100.0, 2101.0, 2110.0, 2111.0]);
        assert_eq!(stack.transposed().matrix(2, 1)[[0, 1]], 2110.0);
    }
}
