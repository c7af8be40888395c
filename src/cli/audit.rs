//! `mhc-analyze audit`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use mhc_analyze::analysis::{AuditConfig, TokenAggregation, Verdict, audit};
use mhc_analyze::export::{self, audit as render};
use mhc_analyze::load::{Layout, LoadOptions, load_hres};
use mhc_analyze::plot;

use super::{Outcome, write_stdout};

/// What to print on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum AuditFormat {
    /// A human-readable table.
    #[default]
    Table,
    /// JSON (the content of audit.json).
    Json,
    /// Markdown, for a pull-request comment.
    Markdown,
}

/// `--layout`: `auto` (None) or a layout.
#[derive(Clone, Debug)]
struct LayoutChoice(Option<Layout>);

fn parse_layout(text: &str) -> Result<LayoutChoice, String> {
    if text == "auto" {
        Ok(LayoutChoice(None))
    } else {
        text.parse::<Layout>()
            .map(|layout| LayoutChoice(Some(layout)))
            .map_err(|e| format!("{e}, or auto"))
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Layouts: stack (one [L,n,n] or [L,T,n,n] tensor of finished H_res), \
lucidrains-hc, lucidrains-mhc, mhc-pytorch, deepseek-v4; auto detects them from tensor names.

Examples:
  mhc-analyze audit model.safetensors
      Find the H_res parameters, rebuild each layer's H_res, print the verdict (exit 0 stable, 1 unstable).
  mhc-analyze audit hres.safetensors --key hres --format json
      Analyse a captured [layers, tokens, n, n] stack; JSON on stdout.
  mhc-analyze audit model.safetensors.index.json --max-gain 1.5 --format markdown > comment.md
      A sharded model as a CI gate, with a Markdown summary for the pull request."
)]
pub struct AuditArgs {
    /// Checkpoint or stack: .safetensors (or its .index.json), .npy, .npz, PyTorch .pt/.pth/.bin.
    path: PathBuf,
    /// How H_res is stored [auto, stack, lucidrains-hc, lucidrains-mhc, mhc-pytorch, deepseek-v4].
    #[arg(long, default_value = "auto", value_parser = parse_layout)]
    layout: LayoutChoice,
    /// The tensor holding a stack of H_res (layout stack).
    #[arg(long)]
    key: Option<String>,
    /// Transpose every matrix (for a stack stored with rows = input streams).
    #[arg(long)]
    transpose: bool,
    /// Use --layout even where the file's metadata or parameters name another layout (recorded in the output).
    #[arg(long)]
    ignore_evidence: bool,
    /// Execution order of H_res modules that share a layer index, by a name component of each (e.g. mixer,ffn).
    #[arg(long, value_delimiter = ',', value_name = "NAME,NAME")]
    sublayer_order: Option<Vec<String>>,
    /// Unstable when the whole-model Amax gain (forward or backward, max over tokens) exceeds this.
    #[arg(long, default_value_t = 2.0)]
    max_gain: f64,
    /// Also unstable when a single layer's Birkhoff distance exceeds this.
    #[arg(long)]
    max_distance: Option<f64>,
    /// How tokens are combined in the per-layer figures.
    #[arg(long, value_enum, default_value = "mean-of-metrics")]
    token_aggregation: TokenArg,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "table")]
    format: AuditFormat,
    /// Write audit.csv, audit.json, audit.md, audit.png/.svg and audit-heatmap.png/.svg into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the analysed matrices ([L,n,n] or [L,T,n,n], f64, rows = output streams) to a .npy file.
    #[arg(long, value_name = "OUT.npy")]
    dump_hres: Option<PathBuf>,
}

/// Token aggregation as typed on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TokenArg {
    /// Metrics per token, then the mean over tokens.
    MeanOfMetrics,
    /// Mean matrix over tokens per layer, then metrics.
    MetricOfMean,
}

pub fn run(args: AuditArgs) -> anyhow::Result<Outcome> {
    let config = AuditConfig::new(
        args.max_gain,
        args.max_distance,
        match args.token_aggregation {
            TokenArg::MeanOfMetrics => TokenAggregation::MeanOfMetrics,
            TokenArg::MetricOfMean => TokenAggregation::MetricOfMean,
        },
    )?;
    let options = LoadOptions {
        layout: args.layout.0,
        key: args.key.clone(),
        transpose: args.transpose,
        ignore_evidence: args.ignore_evidence,
        sublayer_order: args.sublayer_order.clone(),
    };
    let loaded = load_hres(&args.path, &options)?;
    let source = args.path.display().to_string();
    let result = audit(&loaded.stack, &config);

    let json = render::audit_json(&source, &loaded, &config, &result);
    if let Some(out) = &args.out {
        let gains = plot::audit::audit_gain_figure(&source, &loaded, &result);
        let heatmap = plot::audit::audit_heatmap_figure(&loaded, &result);
        let files = vec![
            (
                out.join("audit.csv"),
                export::csv::profile_csv(&result.profile, loaded.layout.name())?,
            ),
            (out.join("audit.json"), export::json::to_bytes(&json)),
            (
                out.join("audit.md"),
                render::audit_markdown(&source, &loaded, &result).into_bytes(),
            ),
            (out.join("audit.png"), plot::line_figure_png(&gains)?),
            (
                out.join("audit.svg"),
                plot::line_figure_svg(&gains)?.into_bytes(),
            ),
            (
                out.join("audit-heatmap.png"),
                plot::heatmap_figure_png(&heatmap)?,
            ),
            (
                out.join("audit-heatmap.svg"),
                plot::heatmap_figure_svg(&heatmap)?.into_bytes(),
            ),
        ];
        export::prepare_output_directory(out)?;
        export::write_all_atomic(files)
            .with_context(|| format!("writing results into {}", out.display()))?;
    }
    if let Some(path) = &args.dump_hres {
        use ndarray_npy::WriteNpyExt;
        let stack = loaded.stack.as_array();
        let mut bytes = Vec::new();
        if stack.shape()[1] == 1 {
            stack.index_axis(ndarray::Axis(1), 0).write_npy(&mut bytes)
        } else {
            stack.write_npy(&mut bytes)
        }
        .with_context(|| format!("encoding {}", path.display()))?;
        export::write_atomic(path, &bytes)?;
    }
    match args.format {
        AuditFormat::Table => {
            write_stdout(render::audit_table(&source, &loaded, &result).as_bytes())?
        }
        AuditFormat::Json => write_stdout(&export::json::to_bytes(&json))?,
        AuditFormat::Markdown => {
            write_stdout(render::audit_markdown(&source, &loaded, &result).as_bytes())?
        }
    }
    Ok(match result.verdict {
        Verdict::Stable => Outcome::Done,
        Verdict::Unstable => Outcome::Finding,
    })
}
