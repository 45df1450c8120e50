#!/usr/bin/env bash
# Whole-process timings of `fm run`: a 1-stage pipeline and a 2,000-stage chain of
# json_transform/logger stages. Prints the median wall time of N runs (default 21) and the
# peak RSS of one run. Usage: benches/whole-process.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-21}"
cargo build --release -q -p fm
fm=target/release/fm
dir=target/bench-pipelines
mkdir -p "$dir"

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
def chain(n):
    st = []
    for i in range(n):
        deps = [] if i == 0 else [f"stage-{i-1}"]
        if i % 2 == 0:
            st.append({"id": f"stage-{i}", "component": "json_transform", "depends_on": deps,
                       "config": {"template": {"n": i, "service": "{{input.service}}"}}})
        else:
            st.append({"id": f"stage-{i}", "component": "logger", "depends_on": deps,
                       "config": {"message": "after {{stages.stage-%d.output.n}}" % (i - 1), "level": "debug"}})
    return {"name": f"chain-{n}", "stages": st}
for n in (1, 2000, 20000):
    json.dump(chain(n), open(f"{d}/chain-{n}.pipeline.json", "w"))
PY

median_ms() {
  # Python's perf_counter around each spawn: `date` itself would add a millisecond of noise.
  python3 - "$n" "$fm" "$1" "$2" <<'PY'
import statistics, subprocess, sys, time
n, fm, file, extra = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cmd = [fm, "run", file, "--input", '{"service":"payment-service"}'] + extra.split()
times = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(times):.2f}")
PY
}

peak_rss_kb() {
  /usr/bin/time -f '%M' "$fm" run "$1" --input '{"service":"payment-service"}' 2>&1 >/dev/null | tail -n 1
}

export FM_STORE="sqlite://$PWD/$dir/bench.db"
for s in 1 2000 20000; do
  f="$dir/chain-$s.pipeline.json"
  echo "chain of $s stage(s): median $(median_ms "$f" "") ms recorded in the store, $(median_ms "$f" --no-store) ms with --no-store, over $n runs; peak RSS $(peak_rss_kb "$f") KiB"
done
