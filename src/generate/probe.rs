//! Probe: per-token H_res of a real model's parameters on synthetic hidden states.
//!
//! For each layer separately, `tokens` independent standard-normal inputs x ∈ R^{rows×dim}
//! (the layer's [`DynamicLayer::input_shape`]: the n residual streams, or mhc-pytorch's single
//! input vector) go through the layout's own norm, projection and Sinkhorn
//! ([`DynamicLayer::hres_with`]); the result is a [`LayerStack`] `[layers, tokens, n, n]`, rows =
//! output streams. This shows the spread of H_res the parameters allow on generic inputs; it is
//! not the distribution of a trained model's real hidden states (capture those and load them as
//! a stack for that).
//!
//! # Determinism
//! The draw of token t in layer l depends on (seed, l, t) only: a ChaCha8 generator seeded with
//! `seed`, on stream l, positioned at word `t · words_per_token`. Each pair of normals uses
//! exactly two 64-bit outputs (Box–Muller), so every token's position is known in advance and
//! any split of the tokens into ranges, on any number of threads, gives the same bytes.

use std::ops::Range;

use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{ConfigError, Error};
use crate::load::{DynamicLayer, DynamicModel, LoadError};
use crate::stack::LayerStack;

/// Largest stack [`probe_stack`] builds: 256 MiB of f64.
pub(crate) const PROBE_STACK_LIMIT_BYTES: u64 = 256 << 20;

/// How many synthetic tokens per layer, and the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProbeConfig {
    tokens: u64,
    seed: u64,
}

impl ProbeConfig {
    /// At least one token.
    pub fn new(tokens: u64, seed: u64) -> Result<Self, ConfigError> {
        if tokens == 0 {
            return Err(ConfigError::TooSmall {
                name: "tokens",
                minimum: 1,
                value: 0,
            });
        }
        Ok(Self { tokens, seed })
    }

    /// Tokens per layer.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// 32-bit generator words one token's input uses: two 64-bit draws per pair of normals.
fn words_per_token(values: usize) -> u128 {
    values.div_ceil(2) as u128 * 4
}

/// Fills `x` with the standard-normal input of token `token` in layer `layer_index`.
pub fn draw_input(seed: u64, layer_index: usize, token: u64, x: &mut [f64]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(layer_index as u64);
    rng.set_word_pos(u128::from(token) * words_per_token(x.len()));
    for pair in x.chunks_mut(2) {
        // u1 ∈ (0, 1] keeps ln finite; u2 ∈ [0, 1). 53 random bits each.
        let u1 = ((rng.next_u64() >> 11) + 1) as f64 * f64::powi(2.0, -53);
        let u2 = (rng.next_u64() >> 11) as f64 * f64::powi(2.0, -53);
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        pair[0] = radius * angle.cos();
        if let Some(second) = pair.get_mut(1) {
            *second = radius * angle.sin();
        }
    }
}

/// The H_res of `tokens` (a range of token indices) in layer `layer_index`, row-major n×n each,
/// into `out` (`tokens.len() · n²` values). Tokens run in parallel (rayon); the result does not
/// depend on the thread count or on how the tokens are split into ranges.
pub fn probe_layer(
    layer: &DynamicLayer,
    layer_index: usize,
    seed: u64,
    tokens: Range<u64>,
    out: &mut [f64],
) {
    let n = layer.streams();
    let [rows, dim] = layer.input_shape();
    let count = (tokens.end - tokens.start) as usize;
    assert_eq!(
        out.len(),
        count * n * n,
        "out must hold one n×n matrix per token"
    );
    out.par_chunks_mut(n * n).enumerate().for_each_init(
        || (vec![0.0; rows * dim], vec![0.0; layer.scratch_len()]),
        |(x, scratch), (k, h)| {
            draw_input(seed, layer_index, tokens.start + k as u64, x);
            layer.hres_with(x, h, scratch);
        },
    );
}

/// The whole probe `[layers, tokens, n, n]`, built layer by layer: one layer's parameters are
/// in memory at a time (for DeepSeek-V4, one `[n², n·dim]` projection), plus the stack itself,
/// `layers · tokens · n² · 8` bytes, which must stay within [`PROBE_STACK_LIMIT_BYTES`].
pub fn probe_stack(model: &DynamicModel, config: &ProbeConfig) -> Result<LayerStack, Error> {
    let layers = model.layers();
    let first = model.layer(0)?;
    let n = first.streams();
    let per_token = (layers * n * n * 8) as u64;
    let limit = PROBE_STACK_LIMIT_BYTES / per_token.max(1);
    if config.tokens > limit {
        return Err(ConfigError::TooLarge {
            name: "tokens (the probe stack is capped at 256 MiB: layers × tokens × n² × 8 bytes)",
            maximum: limit,
            value: config.tokens,
        }
        .into());
    }
    let tokens = config.tokens as usize;
    let mut data = Array4::<f64>::zeros((layers, tokens, n, n));
    let flat = data
        .as_slice_mut()
        .expect("a new array is in standard layout");
    let mut layer = Some(first);
    for (index, chunk) in flat.chunks_exact_mut(tokens * n * n).enumerate() {
        let current = match layer.take() {
            Some(layer) => layer,
            None => model.layer(index)?,
        };
        if current.streams() != n {
            return Err(LoadError::format(
                model.path(),
                format!(
                    "H_res layer {} ('{}') has {} streams, the first layer {n}",
                    index + 1,
                    model.layer_name(index),
                    current.streams()
                ),
            )
            .into());
        }
        probe_layer(&current, index, config.seed, 0..config.tokens, chunk);
    }
    Ok(LayerStack::new(data, "probe H_res")?)
}
