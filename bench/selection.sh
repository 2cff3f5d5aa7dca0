#!/bin/bash
# Benchmark of packet selection (issue: "select any packet without marking
# it"): how much time ipft adds to each packet it does NOT select, when it
# selects by mark and when it selects by a pcap-filter expression, every skb
# function attached. Boots the custom 6.1 kernel (kprobe-multi) and Debian
# 6.1 (kprobe); in each boot no-ipft, mark and expression runs alternate.
# Prints the added time per packet (1/pps with ipft - 1/pps without) and the
# ratio expression/mark. Run as root:  bash bench/selection.sh [COUNT] [ROUNDS]
# (GUESTS="custom" or "debian" for one of them).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5000}
ROUNDS=${2:-3}
cargo build --release
OUT=target/bench-selection
rm -rf "$OUT"
debian=$(ls /boot/vmlinuz-6.1.0-*-amd64 | sort -V | tail -n 1)
GUESTS=${GUESTS:-custom debian}
for run in "custom:kprobe-multi:../shared/kernels/vmlinuz-6.1-ipft" "debian:kprobe:$debian"; do
	label=${run%%:*}
	case " $GUESTS " in *" $label "*) ;; *) continue ;; esac
	rest=${run#*:}
	backend=${rest%%:*}
	image=${rest#*:}
	mkdir -p "$OUT/$label"
	timeout 3000 vng --run "$image" --disable-kvm --force-9p --memory 2G --cpus 2 \
		--rwdir "$PWD/$OUT/$label" \
		--exec "bash $PWD/bench/selection_guest.sh $PWD/$OUT/$label $PWD/target/release/ipft $backend $COUNT $ROUNDS" \
		> "$OUT/$label/vng.log" 2>&1 || true
	[ -f "$OUT/$label/done" ] || { echo "guest $label did not finish: see $OUT/$label" >&2; exit 1; }
done
python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path
print(f"{'guest':>7} {'backend':>13} {'round':>5} {'base pps':>9} {'mark pps':>9} {'expr pps':>9} {'mark +us':>9} {'expr +us':>9} {'expr/mark':>9}")
for label in ("custom", "debian"):
    results = Path(sys.argv[1]) / label / "selection.jsonl"
    if not results.exists():
        continue
    for line in results.read_text().splitlines():
        r = json.loads(line)
        add = lambda pps: 1e6 / pps - 1e6 / r["baseline_pps"]
        m, e = add(r["mark_pps"]), add(r["expression_pps"])
        print(f"{label:>7} {r['backend']:>13} {r['round']:>5} {r['baseline_pps']:>9.0f} {r['mark_pps']:>9.0f} {r['expression_pps']:>9.0f} {m:>9.1f} {e:>9.1f} {e / m:>9.2f}")
PY
