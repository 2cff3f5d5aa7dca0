#!/bin/bash
# Runs inside the guest of bench/kill_switch.sh: per round, an unmarked ping
# flood without ipft, then during the detach of every skb function's fentry
# program, with the kill switch and without it.
#   kill_switch_guest.sh OUT IPFT COUNT ROUNDS
set -u
OUT=$1
IPFT=$2
COUNT=$3
ROUNDS=$4
mkdir -p "$OUT"
exec 2> "$OUT/guest.log"
set -x
. "$(dirname "$0")/../tests/e2e/topology.sh"

. "$(dirname "$0")/flood.sh"

# during_detach ROUND MODE [ENV]: attach every function (fentry), stop, and
# flood while the probes are removed.
during_detach() {
	local round=$1 mode=$2 err="$OUT/${2// /_}.$1.err" pid pps t0
	shift 2
	env "$@" "$IPFT" -b ftrace -m $MARK -o json -v > /dev/null 2> "$err" &
	pid=$!
	while ! grep -q "Trace ready!" "$err"; do
		kill -0 $pid 2>/dev/null || return
		sleep 0.5
	done
	t0=$(date +%s.%N)
	kill -INT $pid
	# Results first (nothing is selected: an instant), then the detach
	# (minutes); ipft's summary on stderr comes only after it, so wait a
	# fixed few seconds instead of for a line.
	sleep 5
	pps=$(flood_pps)
	local still=0
	kill -0 $pid 2>/dev/null && still=1
	wait $pid
	local detach
	detach=$(echo "$(date +%s.%N) - $t0" | bc)
	echo "{\"round\":$round,\"mode\":\"$mode\",\"pps\":$pps,\"detach_s\":\"$detach\",\"flood_inside_detach\":$still}" >> "$OUT/floods.jsonl"
}

for round in $(seq 1 "$ROUNDS"); do
	echo "{\"round\":$round,\"mode\":\"no ipft\",\"pps\":$(flood_pps)}" >> "$OUT/floods.jsonl"
	during_detach "$round" "kill switch" IPFT_BENCH_NONE=1
	during_detach "$round" "programs kept running" IPFT_BENCH_KEEP_PROGRAMS_RUNNING=1
done
echo done > "$OUT/done"
