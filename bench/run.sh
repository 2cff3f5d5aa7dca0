#!/bin/bash
# Benchmark: boots the three test kernels (Debian 6.1, the custom 6.1 with
# kprobe-multi, Debian 6.12; qemu, software emulation) and, per
# backend each supports, measures attach/detach wall time for every skb
# function, marked-flood throughput and losses, the slowdown of unmarked
# traffic while attached, and ipft's peak RSS. Prints a table and writes
# bench/results.json. Takes 20-35 minutes; run as root:
#   bash bench/run.sh [FLOOD_COUNT]
# GUESTS="debian-rt debian-6.12-rt" DEST=bench/results-rt.json measures the
# real-time kernels instead (the 6.1 one: apt-get install
# linux-image-rt-amd64); each row has ipft's start-up estimate of the detach
# beside the measured one.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5000}
cargo build --release
OUT=target/bench
rm -rf "$OUT"
mkdir -p "$OUT"
# Each kernel by its exact series (newest: a regex on the whole name).
. bench/lib.sh
# GUESTS: which kernels, by label (the real-time ones are installed by
# scripts/deps.sh too, and measured when asked: GUESTS="debian-rt debian-6.12-rt").
GUESTS=${GUESTS:-debian custom debian-6.12}
for label in $GUESTS; do
	case $label in
	debian) image=$(newest 'vmlinuz-6\.1\.0-[0-9]+-amd64') ;;
	custom) image=../shared/kernels/vmlinuz-6.1-ipft ;;
	debian-6.12) image=$(newest 'vmlinuz-6\.12\.[0-9]+\+deb12-amd64') ;;
	debian-rt) image=$(newest 'vmlinuz-6\.1\.0-[0-9]+-rt-amd64') ;;
	debian-6.12-rt) image=$(newest 'vmlinuz-6\.12\.[0-9]+\+deb12-rt-amd64') ;;
	*) echo "unknown guest $label (debian, custom, debian-6.12, debian-rt, debian-6.12-rt)" >&2; exit 2 ;;
	esac
	[ -n "$image" ] || { echo "no kernel for $label in /boot: bash scripts/deps.sh" >&2; exit 1; }
	mkdir -p "$OUT/$label"
	run_guest "$OUT/$label" "$image" \
		"bash $PWD/bench/guest.sh $PWD/$OUT/$label $PWD/target/release/ipft $COUNT"
done
python3 bench/report.py "$OUT" "${DEST:-bench/results.json}"
