#!/bin/bash
# Runs inside the guest of bench/events.sh: a marked ping flood through every
# skb function (kprobe-multi), ipft writing JSON to /dev/null with default
# options; per round: with metadata, --no-meta, and the BASE build if given.
#   events_guest.sh OUT IPFT COUNT ROUNDS [BASE_IPFT]
set -u
OUT=$1
IPFT=$2
COUNT=$3
ROUNDS=$4
BASE_IPFT=${5:-}
mkdir -p "$OUT"
exec 2> "$OUT/guest.log"
set -x
. "$(dirname "$0")/../tests/e2e/topology.sh"

now() { date +%s.%N; }

# run NAME ROUND BINARY ARGS...: one flood under ipft, one JSON line.
run() {
	local name=$1 round=$2 bin=$3 pid t0 t1 pps
	shift 3
	"$bin" -b kprobe-multi -m $MARK -o json "$@" > /dev/null 2> "$OUT/$name.$round.err" &
	pid=$!
	while ! grep -q "Trace ready!" "$OUT/$name.$round.err"; do
		kill -0 $pid 2>/dev/null || return
		sleep 0.2
	done
	t0=$(now)
	pps=$(ip netns exec a ping -f -q -c "$COUNT" 10.0.0.2 2>&1 |
		awk '/packets transmitted/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "received,") r = $i; if ($i == "time") t = $(i+1) } }
		     END { sub("ms", "", t); if (t > 0) printf "%.1f", r / (t / 1000); else print 0 }')
	t1=$(now)
	kill -INT $pid
	wait $pid
	local err="$OUT/$name.$round.err"
	local received lost
	received=$(sed -n 's/^\([0-9]*\) events received.*/\1/p' "$err")
	lost=$(sed -n 's/.*received, \([0-9]*\) .*lost.*/\1/p' "$err")
	echo "{\"round\":$round,\"run\":\"$name\",\"received\":${received:-0},\"lost\":${lost:-0},\"flood_s\":$(echo "$t1 - $t0" | bc),\"pps\":${pps:-0}}" >> "$OUT/events.jsonl"
}

for round in $(seq 1 "$ROUNDS"); do
	run meta $round "$IPFT"
	run no-meta $round "$IPFT" --no-meta
	[ -n "$BASE_IPFT" ] && run base $round "$BASE_IPFT"
done
echo done > "$OUT/done"
