#!/bin/bash
# Benchmark: boots the three test kernels (Debian 6.1, the custom 6.1 with
# kprobe-multi, Debian 6.12; qemu, software emulation) and, per
# backend each supports, measures attach/detach wall time for every skb
# function, marked-flood throughput and losses, the slowdown of unmarked
# traffic while attached, and ipft's peak RSS. Prints a table and writes
# bench/results.json. Takes 20-35 minutes; run as root:
#   bash bench/run.sh [FLOOD_COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5000}
cargo build --release
OUT=target/bench
rm -rf "$OUT"
mkdir -p "$OUT"
# Each kernel by its exact series: vmlinuz-6.1* would also match 6.12.
newest() { ls /boot/$1 2>/dev/null | sort -V | tail -n 1; }
debian=$(newest 'vmlinuz-6.1.0-*-amd64')
debian612=$(newest 'vmlinuz-6.12.*+deb12-amd64')
[ -n "$debian" ] && [ -n "$debian612" ] || { echo "Debian 6.1 or 6.12 kernel missing in /boot: bash scripts/deps.sh" >&2; exit 1; }
for kernel in "debian:$debian" "custom:../shared/kernels/vmlinuz-6.1-ipft" "debian-6.12:$debian612"; do
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
