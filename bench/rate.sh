#!/bin/bash
# Benchmark: the highest rate of marked packets ipft follows through every
# skb function without losing an event, with default options (issue:
# performance round 2). Boots the custom 6.1 kernel (kprobe-multi, kprobe,
# ftrace) and climbs a ladder of ping rates per backend (bench/rate_guest.sh);
# with BASE=git revision, the same for that build (built beside this one)
# in the same boot. Prints per step the packets per second and the events
# lost, and per backend and build the highest loss-free rate; appends the
# rows to bench/results-rate.jsonl. Run as root:
#   bash bench/rate.sh          (BACKENDS="kprobe-multi" for fewer)
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-kprobe-multi kprobe ftrace}
cargo build --release
OUT=target/bench-rate
rm -rf "$OUT"
mkdir -p "$OUT"
. bench/lib.sh
build_base
run_guest "$OUT" ../shared/kernels/vmlinuz-6.1-ipft \
	"STEP_S=${STEP_S:-3} bash $PWD/bench/rate_guest.sh $PWD/$OUT $PWD/target/release/ipft '$BACKENDS' $base_bin"
rev=$(git rev-parse --short HEAD)
python3 - "$OUT/rate.jsonl" "$rev" "${BASE:-}" <<'PY'
import json, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
rev, base = sys.argv[2], sys.argv[3]
print(f"{'backend':>13} {'build':>5} {'interval':>8} {'pps':>7} {'lost':>8}")
best = {}
for r in rows:
    pps = r["received"] / r["seconds"] if r["seconds"] else 0
    r["pps"] = round(pps, 1)
    print(f"{r['backend']:>13} {r['build']:>5} {r['interval']:>8} {pps:>7.0f} {r['lost']:>8}")
    key = (r["backend"], r["build"])
    if r["lost"] == 0 and r["received"] > 0:
        best[key] = max(best.get(key, 0), pps)
    else:
        best.setdefault(key, 0)
print("highest loss-free rate (packets/s, every skb function traced):")
for (backend, build), pps in best.items():
    other = best.get((backend, "base"))
    ratio = f"  ({pps / other:.2f}x base)" if build == "this" and other else ""
    steps = [r for r in rows if (r["backend"], r["build"]) == (backend, build)]
    if all(r["lost"] == 0 for r in steps):
        ratio += "  (nothing lost at any step: the guest's packet rate was the limit)"
    print(f"  {backend:>13} {build:>5} {pps:>7.0f}{ratio}")
stamp = datetime.date.today().isoformat()
with open("bench/results-rate.jsonl", "a") as f:
    for r in rows:
        r.update(date=stamp, rev=rev if r["build"] == "this" else base)
        f.write(json.dumps(r) + "\n")
PY
