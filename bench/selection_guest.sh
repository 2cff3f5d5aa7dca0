#!/bin/bash
# Runs inside a benchmark guest (bench/selection.sh): the cost of packet
# selection on traffic that is NOT selected. Unmarked ping floods to
# 10.0.1.2 with no ipft, with ipft selecting by mark, and with ipft selecting
# by a pcap-filter expression (every skb function attached), alternated
# ROUNDS times in this one boot, and the same two with another build
# (BASE_IPFT) when given. Writes $OUT/selection.jsonl.
#   selection_guest.sh OUT IPFT_BINARY BACKEND COUNT ROUNDS [BASE_IPFT]
set -u
OUT=$1
IPFT=$2
BACKEND=$3
COUNT=${4:-5000}
ROUNDS=${5:-3}
BASE_IPFT=${6:-}
mkdir -p "$OUT"
exec 2> "$OUT/guest.log"
set -x
. "$(dirname "$0")/../tests/e2e/topology.sh"

. "$(dirname "$0")/flood.sh"

# The kernel's own count of the time BPF programs run (bpftool prog:
# run_time_ns, run_cnt): what ipft's programs cost per call, without the
# noise of a packet rate.
sysctl -qw kernel.bpf_stats_enabled=1
# "run_time_ns run_cnt" summed over ipft's programs.
prog_stats() {
	bpftool prog show --json 2>/dev/null | python3 -c '
import json, sys
t = c = 0
for p in json.load(sys.stdin):
    if p.get("name", "").startswith("ipft_"):
        t += p.get("run_time_ns", 0)
        c += p.get("run_cnt", 0)
print(t, c)'
}

# flood_with NAME BINARY ARGS...: the flood's pps with BINARY attached
# with ARGS; the programs' mean ns per call during the flood goes to
# $OUT/NAME.ns.
flood_with() {
	local name=$1 binary=$2 pid before after pps
	shift 2
	"$binary" -b "$BACKEND" -o json "$@" > /dev/null 2> "$OUT/$name.err" &
	pid=$!
	while ! grep -q "Trace ready!" "$OUT/$name.err"; do
		kill -0 $pid 2>/dev/null || { echo 0; return; }
		sleep 0.2
	done
	before=$(prog_stats)
	pps=$(flood_pps)
	after=$(prog_stats)
	echo "$before $after" | awk '{ n = $4 - $2; printf "%.1f\n", n > 0 ? ($3 - $1) / n : 0 }' > "$OUT/$name.ns"
	echo "$pps"
	kill -INT $pid
	wait $pid
}

for round in $(seq 1 "$ROUNDS"); do
	base=$(flood_pps)
	mark=$(flood_with mark_$round "$IPFT" -m $MARK)
	expr=$(flood_with expr_$round "$IPFT" 'host 10.0.0.2 and icmp')
	others=",\"mark_ns\":$(cat "$OUT/mark_$round.ns"),\"expression_ns\":$(cat "$OUT/expr_$round.ns")"
	if [ -n "$BASE_IPFT" ]; then
		base_mark=$(flood_with base_mark_$round "$BASE_IPFT" -m $MARK)
		base_expr=$(flood_with base_expr_$round "$BASE_IPFT" 'host 10.0.0.2 and icmp')
		others+=",\"base_mark_pps\":$base_mark,\"base_expression_pps\":$base_expr"
		others+=",\"base_mark_ns\":$(cat "$OUT/base_mark_$round.ns"),\"base_expression_ns\":$(cat "$OUT/base_expr_$round.ns")"
	fi
	echo "{\"kernel\":\"$(uname -r)\",\"backend\":\"$BACKEND\",\"round\":$round,\"baseline_pps\":$base,\"mark_pps\":$mark,\"expression_pps\":$expr$others}" >> "$OUT/selection.jsonl"
done
echo done > "$OUT/done"
