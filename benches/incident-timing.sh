#!/usr/bin/env bash
# The incident pipeline's timing against the critical path. Runs the shipped pipeline on the
# `oom` sandbox scenario with the default latencies (the reference's Execution Timeline / 10),
# N times (default 5), and for each run prints:
#   wall      the whole `fm run` process (start-up, sandbox start, load, run, exit)
#   run       the run's own duration, from the --json record (duration_ms)
#   critical  the critical path: the earliest the run could end if the engine took no time at
#             all, computed from the stages' measured durations and the pipeline's dependency
#             graph (depends_on, router targets, trycatch scopes; skipped stages take 0 ms)
#   overhead  run - critical: what the engine added (scheduling, templates, the record)
# and the stages on the critical path. Usage: benches/incident-timing.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-5}"
cargo build --release -q -p fm
fm=target/release/fm
out=target/incident-timing
mkdir -p "$out"

for i in $(seq "$n"); do
  s=$(date +%s%N)
  "$fm" run pipelines/devops-incident-response.pipeline.json --input inputs/sample-alert.json \
    --sandbox oom --json --progress never --no-store --artifacts "$out/artifacts-$i" >"$out/run-$i.json" 2>"$out/run-$i.err"
  e=$(date +%s%N)
  echo $(( (e - s) / 1000000 )) >"$out/wall-$i"
done

python3 - "$out" "$n" <<'PY'
import json, sys, statistics
out, n = sys.argv[1], int(sys.argv[2])
pipeline = json.load(open("pipelines/devops-incident-response.pipeline.json"))
defs = {s["id"]: s for s in pipeline["stages"]}

# Scope and routing relations from the pipeline file.
routed_by, try_of, catch_of, finally_of, scope = {}, {}, {}, {}, {}
for s in pipeline["stages"]:
    c = s.get("config", {})
    if s["component"] == "router":
        for r in c.get("routes", []):
            for t in r.get("stages", []):
                routed_by.setdefault(t, set()).add(s["id"])
    if s["component"] == "trycatch":
        scope[s["id"]] = c.get("try", []) + c.get("catch", []) + c.get("finally", [])
        for t in c.get("try", []): try_of[t] = s["id"]
        for t in c.get("catch", []): catch_of[t] = s["id"]
        for t in c.get("finally", []): finally_of[t] = s["id"]

def analyse(rec):
    st = {s["id"]: s for s in rec["stages"]}
    dur = lambda i: (st[i].get("duration_ms") or 0) if st[i]["status"] not in ("skipped",) else 0
    start, finish, why = {}, {}, {}
    def f(i):  # ideal finish of stage i
        if i in finish: return finish[i]
        preds = list(defs[i].get("depends_on", [])) + list(routed_by.get(i, ()))
        t = defs.get(i)
        tc = try_of.get(i) or catch_of.get(i) or finally_of.get(i)
        cands = [(f(p), p) for p in preds]
        if tc:
            cands.append((s_(tc), tc + " (start)"))
            cfg = defs[tc]["config"]
            if i in catch_of or i in finally_of:
                cands += [(f(x), x) for x in cfg.get("try", [])]
            if i in finally_of:
                cands += [(f(x), x) for x in cfg.get("catch", [])]
        begin, via = max(cands, default=(0, None))
        start[i], why[i] = begin, via
        if t["component"] == "trycatch":
            end = max([begin] + [f(x) for x in scope[i]])
        else:
            end = begin + dur(i)
        finish[i] = end
        return end
    def s_(i):
        f_start(i)
        return start[i]
    def f_start(i):
        if i in start: return
        preds = list(defs[i].get("depends_on", [])) + list(routed_by.get(i, ()))
        begin, via = max([(f(p), p) for p in preds], default=(0, None))
        start[i], why[i] = begin, via
    for i in defs: f(i)
    last = max(finish, key=finish.get)
    chain, cur = [], last
    while cur:
        chain.append(cur)
        nxt = why.get(cur)
        cur = nxt.replace(" (start)", "") if nxt else None
        if cur in chain: break
    chain.reverse()
    actual_end = max((s.get("started_at_ms", 0) or 0) + (s.get("duration_ms") or 0) for s in rec["stages"] if s["status"] != "skipped")
    fetches = {k: (st[k]["started_at_ms"], st[k]["started_at_ms"] + st[k]["duration_ms"]) for k in ("fetch-logs", "fetch-metrics", "fetch-recent-deploys")}
    return finish[last], chain, actual_end, fetches

rows = []
for i in range(1, n + 1):
    rec = json.load(open(f"{out}/run-{i}.json"))
    assert rec["status"] == "succeeded", rec.get("error")
    assert rec["output"]["resolution"]["type"] == "auto-remediated", rec["output"]["resolution"]
    wall = int(open(f"{out}/wall-{i}").read())
    crit, chain, actual_end, fetches = analyse(rec)
    run = rec["duration_ms"]
    rows.append((wall, run, crit, run - crit, actual_end))
    print(f"run {i}: wall {wall} ms, run {run} ms, critical path {crit} ms, overhead {run - crit} ms "
          f"(last stage ended at {actual_end} ms; verify-health {[s for s in rec['stages'] if s['id']=='verify-health'][0]['attempts']} attempts)")
    if i == 1:
        print("  fetches (start-end ms): " + ", ".join(f"{k} {a}-{b}" for k, (a, b) in fetches.items()))
        print("  critical path: " + " -> ".join(chain))
med = lambda k: statistics.median(r[k] for r in rows)
print(f"median of {n}: wall {med(0)} ms, run {med(1)} ms, critical path {med(2)} ms, "
      f"engine overhead {med(3)} ms (max {max(r[3] for r in rows)} ms), process overhead {med(0) - med(2)} ms")
PY
