//! Seeded random logits for synthetic HC/mHC stacks.
//!
//! For seed index `s`, layer `l` and token `t` the generator draws
//! `logits(l, t) = identity_weight · I + S + logit_std · G(l, t)`, where every `G(l, t)` is an
//! independent n×n matrix of standard normals and `S = shared_std · G_shared` is one standard
//! normal matrix per seed shared by all layers and tokens (correlated layers make mHC's truncated
//! Sinkhorn errors compound; with `shared_std = 0` nothing is drawn for it).
//!
//! Draw order, fixed so that results are reproducible: `G_shared` first (only when
//! `shared_std > 0`), then `G(l, t)` for l = 1..L, t = 1..T, each row-major.

use ndarray::Array4;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::error::ConfigError;

/// The generator for task `index` (one seed of a sweep): a ChaCha8 stream keyed by the master
/// seed, with the task index as the stream number, so that results do not depend on thread
/// count or scheduling.
pub fn task_rng(master_seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(master_seed);
    rng.set_stream(index);
    rng
}

/// Parameters of the random logits (validated: every scale finite and non-negative).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogitGenerator {
    identity_weight: f64,
    logit_std: f64,
    shared_std: f64,
}

impl Default for LogitGenerator {
    /// `I + 0.3·G`, no shared component.
    fn default() -> Self {
        Self {
            identity_weight: 1.0,
            logit_std: 0.3,
            shared_std: 0.0,
        }
    }
}

impl LogitGenerator {
    /// The generator in symbols, in the one wording `gain --help` and the reports use:
    /// identity weight w, shared term S ([`Self::SHARED_TERM`]), noise scale σ.
    pub const FORMULA: &'static str = "w·I + S + σ·G";

    /// The shared term of [`Self::FORMULA`]: one standard normal matrix per seed, scaled by s,
    /// added to every layer and token.
    pub const SHARED_TERM: &'static str = "S = s·G_shared";

    /// `identity_weight · I + shared_std · G_shared + logit_std · G(l, t)`.
    pub fn new(identity_weight: f64, logit_std: f64, shared_std: f64) -> Result<Self, ConfigError> {
        check_real("identity-weight", identity_weight, false)?;
        check_real("logit-std", logit_std, true)?;
        check_real("shared-std", shared_std, true)?;
        Ok(Self {
            identity_weight,
            logit_std,
            shared_std,
        })
    }

    /// Weight of the identity in every layer's logits.
    pub fn identity_weight(&self) -> f64 {
        self.identity_weight
    }

    /// Standard deviation of the per-layer, per-token noise.
    pub fn logit_std(&self) -> f64 {
        self.logit_std
    }

    /// Standard deviation of the component shared by all layers of a seed.
    pub fn shared_std(&self) -> f64 {
        self.shared_std
    }

    /// [`Self::FORMULA`] with this generator's numbers, for titles and tables, e.g. `I + 0.3·G`
    /// or `I + 0.5·G_shared + 0.3·G`.
    pub(crate) fn describe(&self) -> String {
        let mut text = if self.identity_weight == 1.0 {
            "I".to_string()
        } else {
            format!("{}·I", self.identity_weight)
        };
        if self.shared_std > 0.0 {
            text.push_str(&format!(" + {}·G_shared", self.shared_std));
        }
        text.push_str(&format!(" + {}·G", self.logit_std));
        text
    }

    /// Draws `[layers, tokens, n, n]` logits from `rng` in the documented order.
    pub fn draw(
        &self,
        rng: &mut ChaCha8Rng,
        layers: usize,
        tokens: usize,
        n: usize,
    ) -> Array4<f64> {
        let mut shared = vec![0.0; n * n];
        if self.shared_std > 0.0 {
            for value in &mut shared {
                let g: f64 = rng.sample(StandardNormal);
                *value = self.shared_std * g;
            }
        }
        let mut data = Array4::<f64>::zeros((layers, tokens, n, n));
        let flat = data.as_slice_mut().expect("fresh arrays are contiguous");
        for matrix in flat.chunks_exact_mut(n * n) {
            for (k, value) in matrix.iter_mut().enumerate() {
                let g: f64 = rng.sample(StandardNormal);
                let identity = if k / n == k % n {
                    self.identity_weight
                } else {
                    0.0
                };
                *value = identity + shared[k] + self.logit_std * g;
            }
        }
        data
    }
}

fn check_real(name: &'static str, value: f64, non_negative: bool) -> Result<(), ConfigError> {
    if !value.is_finite() || (non_negative && value < 0.0) {
        return Err(ConfigError::BadReal {
            name,
            non_negative,
            value,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draw_other_index_differs() {
        let generator = LogitGenerator::default();
        let a = generator.draw(&mut task_rng(7, 3), 4, 2, 3);
        let b = generator.draw(&mut task_rng(7, 3), 4, 2, 3);
        let c = generator.draw(&mut task_rng(7, 4), 4, 2, 3);
        let d = generator.draw(&mut task_rng(8, 3), 4, 2, 3);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn zero_noise_gives_scaled_identity() {
        let generator = LogitGenerator::new(2.0, 0.0, 0.0).unwrap();
        let draw = generator.draw(&mut task_rng(0, 0), 2, 1, 3);
        assert_eq!(draw[[1, 0, 1, 1]], 2.0);
        assert_eq!(draw[[1, 0, 1, 2]], 0.0);
    }

    #[test]
    fn shared_component_is_the_same_in_every_layer() {
        let generator = LogitGenerator::new(0.0, 0.0, 1.0).unwrap();
        let draw = generator.draw(&mut task_rng(1, 0), 3, 2, 4);
        assert!(draw[[0, 0, 2, 1]] != 0.0);
        assert_eq!(draw[[0, 0, 2, 1]], draw[[2, 1, 2, 1]]);
    }

    #[test]
    fn rejects_bad_scales() {
        assert!(LogitGenerator::new(1.0, -0.1, 0.0).is_err());
        assert!(LogitGenerator::new(f64::NAN, 0.1, 0.0).is_err());
        assert!(LogitGenerator::new(1.0, 0.1, f64::INFINITY).is_err());
    }
}
