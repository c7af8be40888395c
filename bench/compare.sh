#!/usr/bin/env bash
# Compare `mhc-analyze gain` with the numpy reference (bench/numpy_reference.py): results and speed.
#
# Usage:  bench/compare.sh [S ...]          S = number of draws (default: 100 1000 10000)
#
# For each S: numpy_reference.py draws logits I + 0.3·G of shape [S, 64, 1, 4, 4] (seed 0), saves them and
# times its own computation (every metric and the statistics over draws; not the draw, not its CSV); then
# `target/release/mhc-analyze gain --logits FILE` is timed as the process's wall clock: without --out (the
# same work, plus reading the file and printing the table), with `--out DIR` (also writing the CSV, JSON,
# SVG and PNG) and with `--out DIR --threads 1`, each TOOL_RUNS times (default 3; the median counts). The
# ratio np/tool compares the same work; np/+files the whole job. The tool's gain.csv is compared with numpy's (stat = mean,
# relative tolerance 1e-9, 1e-6 for birkhoff_distance, plus an absolute 1e-13 for values at rounding level);
# median/min/max/p05/p95 are reported for information only (the tool may sketch quantiles for large S);
# the 1-thread CSV must equal the default one byte for byte. Prints a table at the end.
#
# Setup is automatic: a venv in bench/.venv (python3 -m venv; pip install numpy scipy quadprog from the
# package registry) and `cargo build --release`. Outputs go to bench/.work/ (override with BENCH_WORK=DIR).
# MHC_ANALYZE=/path/to/binary skips the build and benchmarks that binary instead; TOOL_RUNS=N sets the runs.
# Timing: a small Python wrapper (time.perf_counter around the child; peak RSS = the child's ru_maxrss from
# wait4, the number GNU `time -v` prints as "Maximum resident set size", at sub-millisecond resolution).
#
# Exit status: 0 all comparisons pass, 1 some comparison failed, 2 setup/build/run error.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv"
py="$venv/bin/python"
work="${BENCH_WORK:-$here/.work}"
layers=64
streams=4

die() { echo "compare.sh: error: $*" >&2; exit 2; }
log() { echo "compare.sh: $*" >&2; }

runs="${TOOL_RUNS:-3}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "TOOL_RUNS must be a positive integer, got '$runs'"
seeds=("$@")
if [[ ${#seeds[@]} -eq 0 ]]; then seeds=(100 1000 10000); fi
for s in "${seeds[@]}"; do
  [[ "$s" =~ ^[1-9][0-9]*$ ]] || die "S must be a positive integer, got '$s' (usage: bench/compare.sh [S ...])"
done

# --- Python venv -------------------------------------------------------------------------------------------
if [[ ! -x "$py" ]]; then
  command -v python3 >/dev/null || die "python3 not found; install Python 3.9+ first"
  log "creating $venv (numpy, scipy, quadprog from the package registry)"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --upgrade pip || die "pip upgrade failed"
  "$venv/bin/pip" install --quiet numpy scipy quadprog \
    || die "pip install numpy scipy quadprog failed; remove $venv and retry"
fi
"$py" -c 'import numpy, quadprog' 2>/dev/null \
  || die "$venv lacks numpy or quadprog; remove it (rm -rf bench/.venv) and rerun"
log "$("$py" -c 'import sys, numpy; print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}")')"

# --- Tool --------------------------------------------------------------------------------------------------
if [[ -n "${MHC_ANALYZE:-}" ]]; then
  tool="$MHC_ANALYZE"
  log "using MHC_ANALYZE=$tool (no build)"
else
  command -v cargo >/dev/null || die "cargo not found; install Rust (https://rustup.rs)"
  log "cargo build --release"
  (cd "$root" && cargo build --release) || die "cargo build --release failed"
  tool="$root/target/release/mhc-analyze"
fi
[[ -x "$tool" ]] || die "tool binary '$tool' not found or not executable"
gain_help="$("$tool" gain --help 2>&1 || true)"  # not piped into grep -q: SIGPIPE + pipefail would misfire
[[ "$gain_help" == *--logits* ]] \
  || die "'$tool gain --help' does not list --logits: this build cannot read a logits file yet"

# --- Helpers -----------------------------------------------------------------------------------------------
# timed RESULT LOG cmd...: runs cmd with stdout+stderr to LOG; writes "seconds peak_rss_kib" to RESULT.
timed() {
  "$py" - "$@" <<'PY'
import resource, subprocess, sys, time
result, log, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "w") as out:
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if sys.platform == "darwin":
    rss //= 1024  # bytes there, KiB on Linux
with open(result, "w") as f:
    f.write(f"{seconds:.4f} {rss}\n")
sys.exit(rc)
PY
}

# compare REF_CSV TOOL_CSV [TOOL_SUMMARY_JSON]: prints a per-metric table, exits 0 (PASS) or 1 (FAIL).
compare() {
  COMPARE_ATOL="${COMPARE_ATOL:-1e-13}" "$py" - "$@" <<'PY'
import csv, math, os, sys
ref_path, tool_path = sys.argv[1], sys.argv[2]
atol = float(os.environ["COMPARE_ATOL"])
KEY = ("method", "composite", "layer", "metric", "stat")

def load(path):
    with open(path, newline="") as f:
        rows = csv.DictReader(f)
        missing = set(KEY + ("value",)) - set(rows.fieldnames or ())
        if missing:
            sys.exit(f"{path}: missing column(s) {', '.join(sorted(missing))} (header: {rows.fieldnames})")
        data = {}
        for row in rows:
            key = tuple(row[k] for k in KEY)
            value = float(row["value"])
            if key in data and not (data[key] == value or (math.isnan(value) and math.isnan(data[key]))):
                sys.exit(f"{path}: two different values for {key}: extra grid columns? "
                         f"(columns: {rows.fieldnames})")
            data[key] = value
    return data

ref, tool = load(ref_path), load(tool_path)
ref_metrics = sorted({k[3] for k in ref})
tool_metrics = {k[3] for k in tool}
failed = False
per_stat = {}
# max rel: largest |a − b| / max(|a|, |b|) among values above 1e-9 (below that, values are rounding noise);
# tol used: largest |a − b| / (rtol·max(|a|, |b|) + atol); ≤ 1 passes.
print(f"  {'metric':22s} {'rtol':>6s} {'max rel':>10s} {'max abs':>10s} {'tol used':>9s} "
      f"{'tol used, all stats':>20s}  result (stat = mean)")
for metric in ref_metrics:
    rtol = 1e-6 if metric == "birkhoff_distance" else 1e-9
    if metric not in tool_metrics:
        print(f"  {metric:22s} {rtol:6.0e} {'':>10s} {'':>10s} {'':>9s} {'':>20s}  MISSING from tool output")
        failed = True
        continue
    rel = diff_max = used = used_all = 0.0
    absent = 0
    for key, a in ref.items():
        if key[3] != metric:
            continue
        if key not in tool:
            absent += 1
            continue
        b = tool[key]
        if not (math.isfinite(a) and math.isfinite(b)):
            u = 0.0 if a == b else math.inf
            d, r = u, u
        else:
            d = abs(a - b)
            big = max(abs(a), abs(b))
            r = d / big if big > 1e-9 else 0.0
            u = d / (rtol * big + atol)
        used_all = max(used_all, u)
        old_u, old_r = per_stat.get(key[4], (0.0, 0.0))
        per_stat[key[4]] = (max(old_u, u), max(old_r, r))
        if key[4] == "mean":
            rel, diff_max, used = max(rel, r), max(diff_max, d), max(used, u)
    verdict = "PASS" if used <= 1 and not absent else "FAIL"
    note = f" ({absent} rows missing from tool output)" if absent else ""
    failed |= verdict != "PASS"
    print(f"  {metric:22s} {rtol:6.0e} {rel:10.2e} {diff_max:10.2e} {used:9.2g} {used_all:20.2g}  {verdict}{note}")
info = ", ".join(f"{st} {u:.2g}{'' if u <= 1 else f' (max rel {r:.1e}) DIFFERS'}" for st, (u, r) in per_stat.items())
print(f"  tol used per stat over all metrics (only mean decides): {info}")
if len(sys.argv) > 3 and os.path.exists(sys.argv[3]):
    import json
    try:
        note = json.load(open(sys.argv[3]))["conventions"]["statistics"]
        print(f"  tool's summary.json says: statistics {note}")
    except (KeyError, TypeError, ValueError):
        pass
extra = sorted(tool_metrics - set(ref_metrics))
if extra:
    print(f"  tool-only metrics (not compared): {', '.join(extra)}")
print(f"  overall: {'FAIL' if failed else 'PASS'} (pass: |a − b| ≤ rtol·max(|a|, |b|) + {atol:g} for stat = mean)")
sys.exit(1 if failed else 0)
PY
}

# --- Runs --------------------------------------------------------------------------------------------------
mkdir -p "$work" || die "cannot create $work"
nthreads="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')"
summary=()
any_fail=0
for s in "${seeds[@]}"; do
  dir="$work/S$s"
  rm -rf "$dir" && mkdir -p "$dir"
  npy="$dir/logits.npy"
  log "S=$s: numpy reference (logits [$s, $layers, 1, $streams, $streams] → $npy)"
  "$py" "$here/numpy_reference.py" --seeds "$s" --layers "$layers" --streams "$streams" \
      --logits-out "$npy" --csv-out "$dir/numpy.csv" --verify 200 >"$dir/numpy.out" 2>"$dir/numpy.err" \
    || { cat "$dir/numpy.err" >&2; die "numpy_reference.py failed for S=$s (log: $dir/numpy.err)"; }
  cat "$dir/numpy.err" >&2
  np_s="$(awk '$1 == "compute_seconds" {print $2}' "$dir/numpy.out")"
  np_rss="$(awk '$1 == "peak_rss_mib" {print $2}' "$dir/numpy.out")"
  [[ -n "$np_s" ]] || die "no compute_seconds line in $dir/numpy.out"

  # Three timed configurations, each run $runs times (the median is reported, peak RSS is the largest):
  #   stats: gain --logits FILE            the work numpy times: read the draws, every metric of every
  #                                        matrix, the statistics over draws (printed as the table)
  #   all:   ... --out DIR                 the whole job: also writes gain.csv, summary.json, gain.svg, gain.png
  #   1:     ... --out DIR --threads 1     the whole job on one thread
  for mode in stats all 1; do
    out="$dir/tool_threads_$mode"
    args=(gain --logits "$npy")
    if [[ "$mode" != stats ]]; then args+=(--out "$out"); fi
    if [[ "$mode" == 1 ]]; then args+=(--threads 1); fi
    log "S=$s: $tool ${args[*]} ($runs runs)"
    : >"$dir/time_$mode.runs"
    for ((run = 1; run <= runs; run++)); do
      timed "$dir/time_$mode.run" "$dir/tool_$mode.log" "$tool" "${args[@]}" \
        || { tail -n 20 "$dir/tool_$mode.log" >&2; die "mhc-analyze failed for S=$s (log: $dir/tool_$mode.log)"; }
      cat "$dir/time_$mode.run" >>"$dir/time_$mode.runs"
    done
    # "median_seconds max_peak_kib" of the runs.
    "$py" -c 'import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
print(f"{statistics.median(float(r[0]) for r in rows):.4f} {max(int(r[1]) for r in rows)}")' \
      "$dir/time_$mode.runs" >"$dir/time_$mode"
    if [[ "$mode" != stats ]]; then
      [[ -s "$out/gain.csv" ]] || die "mhc-analyze wrote no $out/gain.csv (log: $dir/tool_$mode.log)"
    fi
  done
  read -r stats_s stats_kib <"$dir/time_stats"
  read -r tool_s tool_kib <"$dir/time_all"
  read -r tool1_s tool1_kib <"$dir/time_1"

  log "S=$s: comparing $dir/tool_threads_all/gain.csv with $dir/numpy.csv"
  if compare "$dir/numpy.csv" "$dir/tool_threads_all/gain.csv" "$dir/tool_threads_all/summary.json" | tee "$dir/compare.txt" >&2; then
    verdict=PASS
  else
    rc=${PIPESTATUS[0]}
    [[ $rc -eq 1 ]] || die "comparison could not run for S=$s (see above)"
    verdict=FAIL
    any_fail=1
  fi
  if cmp -s "$dir/tool_threads_all/gain.csv" "$dir/tool_threads_1/gain.csv"; then
    same=yes
  else
    same=NO
    any_fail=1
  fi
  ratio="$("$py" -c "print(f'{$np_s / max($stats_s, 1e-9):.1f}')")"
  ratio_job="$("$py" -c "print(f'{$np_s / max($tool_s, 1e-9):.1f}')")"
  rss_max=$stats_kib
  for kib in "$tool_kib" "$tool1_kib"; do
    if (( kib > rss_max )); then rss_max=$kib; fi
  done
  summary+=("$(printf '%7s %9s %9s %9s %9s %8s %8s %10s %9s %8s %9s' "$s" "$np_s" "$stats_s" "$tool_s" "$tool1_s" \
    "$ratio" "$ratio_job" "$np_rss" "$(( rss_max / 1024 ))" "$verdict" "$same")")
done

echo
echo "mhc-analyze gain vs numpy: L=$layers, n=$streams, T=1; $nthreads CPUs; tool times: median of $runs runs;"
echo "outputs in $work"
printf '%7s %9s %9s %9s %9s %8s %8s %10s %9s %8s %9s\n' "S" "numpy_s" "tool_s" "+files_s" "1thr_s" \
  "np/tool" "np/+files" "numpy_MiB" "tool_MiB" "compare" "1thr=all"
for line in "${summary[@]}"; do echo "$line"; done
echo "tool_s: gain --logits FILE (read, compute, statistics: numpy's timed work), default thread count"
echo "  ($nthreads CPUs here); +files_s: the same with --out DIR (also writes gain.csv, summary.json, gain.svg,"
echo "  gain.png); 1thr_s: +files on one thread. np/tool = numpy_s / tool_s; np/+files = numpy_s / +files_s;"
echo "  tool_MiB = largest peak RSS of all tool runs."
exit "$any_fail"
