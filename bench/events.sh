#!/bin/bash
# Benchmark of the event record (issue: sectioned events): events per second
# delivered and lost, default options, for a marked ping flood through every
# skb function, with packet metadata (the default) and without (--no-meta:
# 40-byte records), and optionally with another build (BASE=git revision,
# e.g. the commit before the sectioned event, built beside this one), all
# alternated ROUNDS times in one boot of the custom 6.1 kernel (kprobe-multi).
# Run as root:  bash bench/events.sh [COUNT] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-3000}
ROUNDS=${2:-3}
cargo build --release
OUT=target/bench-events
rm -rf "$OUT"
mkdir -p "$OUT"
. bench/lib.sh
build_base
run_guest "$OUT" ../shared/kernels/vmlinuz-6.1-ipft \
	"bash $PWD/bench/events_guest.sh $PWD/$OUT $PWD/target/release/ipft $COUNT $ROUNDS $base_bin"
python3 - "$OUT/events.jsonl" <<'PY'
import json, sys
print(f"{'round':>5} {'run':>8} {'events':>9} {'lost':>8} {'flood s':>8} {'events/s':>9} {'pps':>7}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    rate = r["received"] / r["flood_s"] if r["flood_s"] else 0
    print(f"{r['round']:>5} {r['run']:>8} {r['received']:>9} {r['lost']:>8} {r['flood_s']:>8.2f} {rate:>9.0f} {r['pps']:>7.0f}")
PY
