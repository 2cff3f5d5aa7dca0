#!/bin/bash
# Benchmark: Ctrl-C to the shell prompt on a terminal, per backend and
# kernel (bench/prompt_guest.sh under script(1)), with what remains attached
# once the background detach is over (must be nothing). Boots the custom 6.1,
# Debian 6.1 and Debian 6.12 kernels (GUESTS to choose). Run as root:
#   bash bench/prompt.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
cargo build --release
OUT=target/bench-prompt
rm -rf "$OUT"
. bench/lib.sh
for label in ${GUESTS:-custom debian debian-6.12}; do
	case $label in
	custom) image=../shared/kernels/vmlinuz-6.1-ipft ;;
	debian) image=$(newest 'vmlinuz-6\.1\.0-[0-9]+-amd64') ;;
	debian-6.12) image=$(newest 'vmlinuz-6\.12\.[0-9]+\+deb12-amd64') ;;
	*) echo "unknown guest $label (custom, debian, debian-6.12)" >&2; exit 2 ;;
	esac
	mkdir -p "$OUT/$label"
	run_guest "$OUT/$label" "$image" \
		"bash $PWD/bench/prompt_guest.sh $PWD/$OUT/$label $PWD/target/release/ipft $ROUNDS"
done
python3 - "$OUT" <<'PY'
import json, re, sys
from pathlib import Path
rows = []
for f in sorted(Path(sys.argv[1]).glob("*/prompt.jsonl")):
    rows += [json.loads(re.sub(r":(-?)\.(\d)", r":\g<1>0.\2", l)) for l in f.read_text().splitlines()]
print(f"{'kernel':>24} {'backend':>13} {'prompt s (each round)':>30} {'max':>6} {'packets':>8} {'left':>5}")
by = {}
for r in rows:
    by.setdefault((r["kernel"], r["backend"]), []).append(r)
for (kernel, backend), rs in by.items():
    times = " ".join(f"{r['prompt_s']:.2f}" for r in rs)
    print(f"{kernel:>24} {backend:>13} {times:>30} {max(r['prompt_s'] for r in rs):>6.2f} {min(r['packets'] for r in rs):>8} {max(r['programs_left'] for r in rs):>5}")
PY
