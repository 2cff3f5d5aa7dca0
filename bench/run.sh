#!/bin/bash
# Benchmark: boots both 6.1 test kernels (qemu, software emulation) and, per
# backend each supports, measures attach/detach wall time for every skb
# function, marked-flood throughput and losses, the slowdown of unmarked
# traffic while attached, and ipft's peak RSS. Prints a table and writes
# bench/results.json. Takes 15-25 minutes; run as root:
#   bash bench/run.sh [FLOOD_COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5000}
cargo build --release
OUT=target/bench
rm -rf "$OUT"
mkdir -p "$OUT"
debian=$(ls /boot/vmlinuz-6.1*-amd64 | sort | tail -n 1)
for kernel in "debian:$debian" "custom:../shared/kernels/vmlinuz-6.1-ipft"; do
	label=${kernel%%:*}
	image=${kernel#*:}
	mkdir -p "$OUT/$label"
	timeout 3000 vng --run "$image" --disable-kvm --force-9p --memory 2G --cpus 2 \
		--rwdir "$PWD/$OUT/$label" \
		--exec "bash $PWD/bench/guest.sh $PWD/$OUT/$label $PWD/target/release/ipft $COUNT" \
		> "$OUT/$label/vng.log" 2>&1 || true
	[ -f "$OUT/$label/done" ] || { echo "guest $label did not finish: see $OUT/$label" >&2; exit 1; }
done
python3 bench/report.py "$OUT" bench/results.json
