#!/bin/bash
# Benchmark of the kill switch (issue 18): how fast unselected traffic flows
# while a long detach runs, with ipft's programs turned into no-ops as
# detaching begins (the default) and with them left working
# (IPFT_BENCH_KEEP_PROGRAMS_RUNNING=1), against no ipft at all. One boot of
# Debian's 6.1 kernel, where detaching every skb function's fentry program
# takes minutes; the modes alternate ROUNDS times. An unmarked ping flood
# (COUNT packets, 10.0.1.2) runs once ipft has printed its results, i.e.
# while the kernel removes the probes.
# Run as root:  bash bench/kill_switch.sh [COUNT] [ROUNDS]
# (IPFT=path uses that binary instead of building target/release/ipft.)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5000}
ROUNDS=${2:-2}
if [ -z "${IPFT:-}" ]; then
	cargo build --release
	IPFT=$PWD/target/release/ipft
fi
OUT=target/bench-kill-switch
rm -rf "$OUT"
mkdir -p "$OUT"
kernel=$(ls /boot/vmlinuz-6.1.0-*-amd64 | grep -E 'vmlinuz-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -n 1)
timeout 5400 vng --run "$kernel" --disable-kvm --force-9p --memory 2G --cpus 2 \
	--rwdir "$PWD/$OUT" \
	--exec "bash $PWD/bench/kill_switch_guest.sh $PWD/$OUT $IPFT $COUNT $ROUNDS" \
	> "$OUT/vng.log" 2>&1 || true
[ -f "$OUT/done" ] || { echo "guest did not finish: see $OUT" >&2; exit 1; }
python3 - "$OUT/floods.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'round':>5} {'mode':>22} {'pps':>8} {'detach s':>9}")
for r in rows:
    print(f"{r['round']:>5} {r['mode']:>22} {r['pps']:>8.0f} {r.get('detach_s', ''):>9}")
for mode in ("kill switch", "programs kept running"):
    ratios = [r["pps"] / b["pps"] for r in rows if r["mode"] == mode
              for b in rows if b["mode"] == "no ipft" and b["round"] == r["round"] and b["pps"]]
    if ratios:
        print(f"{mode}: {min(ratios):.2f}-{max(ratios):.2f} of the rate without ipft")
PY
