#!/usr/bin/env bash
# Builds every arm of the paper's comparison (docs/paper.md) from one corpus with one tokenizer,
# and prints one Markdown table row per arm: overhead and knot-distance median from
# `utk inspect --summary`; writes one --plot SVG per arm with knots (or CIP chunks) to PLOTS.
#
#   scripts/paper-arms.sh WORK PLOTS TOKENIZER INPUT...
#   UTK=path/to/utk (default: target/release/utk)
set -euo pipefail
work=$1 plots=$2 tok=$3
shift 3
utk=${UTK:-target/release/utk}
mkdir -p "$work" "$plots"

# name | plot (yes/no) | flags
arms=(
  "abf|no|--method plain"
  "upsampling|no|--method plain --upsample-long 32768:5"
  "attnmask|no|--method plain --doc-boundaries"
  "cip|yes|--method cip"
  "utk|yes|"
  "utk-no-backtrace|yes|--no-backtrace"
  "utk-order-disrupted|yes|--order shuffle"
  "utk-chunks-2|yes|--chunks 2"
  "utk-chunks-3|yes|--chunks 3"
  "utk-chunks-4|yes|--chunks 4"
  "utk-chunks-5|yes|--chunks 5"
  "utk-1k-chunks|yes|--chunking fixed --chunk-tokens 1024"
  "utk-split-0.3|yes|--split-prob 0.3"
  "utk-192k|yes|-L 192k"
  "upsampling-utk|yes|--upsample-long 32768:5"
)
echo "| arm | flags | windows | overhead | knot distance median |"
echo "|---|---|---|---|---|"
for arm in "${arms[@]}"; do
  IFS='|' read -r name plot flags <<<"$arm"
  out=$work/$name
  # shellcheck disable=SC2086
  "$utk" augment "$@" -t "$tok" -o "$out" --force -q $flags
  plot_args=()
  if [ "$plot" = yes ]; then plot_args=(--plot "$plots/$name.svg"); fi
  summary=$("$utk" inspect "$out" --summary "${plot_args[@]}")
  windows=$(sed -n '1s/.* · \([0-9]*\) windows of.*/\1/p' <<<"$summary")
  overhead=$(sed -n 's/.*(\([0-9.]*%\) overhead).*/\1/p' <<<"$summary")
  median=$(sed -n 's/.*, median \([0-9]*\),.*/\1/p' <<<"$summary")
  if [ "$plot" = no ]; then median="–"; fi
  echo "| $name | \`${flags:-(defaults)}\` | $windows | $overhead | $median |"
  "$utk" verify "$out" >/dev/null
done
