#!/usr/bin/env bash
# The FlowMason compatibility yardstick: installs flowmason==1.0.24 from PyPI into a temporary
# venv, takes every pipeline the package ships (the Studio templates in the wheel and the
# `flowmason init` scaffolds), and runs `fm validate` and `fm run` on each, against a local
# stand-in model (OpenAI-compatible) and HTTP server. Prints a table and the counts.
#
# The package is only a yardstick: nothing of it is copied into this repository; it lives in a
# temp dir that is removed afterwards.
#
# Usage: scripts/flowmason-compat.sh [--fm PATH] [--keep] [--verbose]
#   --fm PATH   the fm binary (default: builds target/debug/fm)
#   --keep      keep the temp dir (venv, scaffolds, each run's stderr) and print where it is
#   --verbose   print each failing pipeline's first problem lines under the table
set -euo pipefail
cd "$(dirname "$0")/.."

fm=""
keep=0
verbose=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fm) fm="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --verbose) verbose=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [ -z "$fm" ]; then
  cargo build -q -p fm
  fm="$PWD/target/debug/fm"
fi

work="$(mktemp -d -t fm-flowmason-compat.XXXXXX)"
if [ "$keep" = 0 ]; then trap 'rm -rf "$work"' EXIT; fi

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "flowmason==1.0.24"
site="$("$work/venv/bin/python" -c 'import flowmason_studio_backend, os; print(os.path.dirname(os.path.dirname(flowmason_studio_backend.__file__)))')"

mkdir -p "$work/pipelines"
cp "$site"/flowmason_studio_backend/data/templates/*.json "$work/pipelines/"
for t in basic ai-pipeline etl; do
  (cd "$work" && "$work/venv/bin/flowmason" init "init-$t" --template "$t" >/dev/null 2>&1)
  cp "$work/init-$t/pipelines/main.pipeline.json" "$work/pipelines/init-$t.pipeline.json"
done

args=(--fm "$fm" --dir "$work/pipelines" --logs "$work/logs")
[ "$verbose" = 1 ] && args+=(--verbose)
python3 scripts/flowmason_compat.py "${args[@]}"
if [ "$keep" = 1 ]; then echo "kept: $work"; fi
