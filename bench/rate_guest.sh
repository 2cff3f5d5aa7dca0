#!/bin/bash
# Runs inside the guest of bench/rate.sh: the event-rate ladder. Per backend
# and build, one ipft with default options (aggregate output, default
# buffers and wakeups) traces every skb function for marked packets; marked
# pings at rising rates (one step after the other, STEP_S seconds each, a
# flood last) go through it, and the kernel's count of events it could not
# hand over (ipft_lost, read with bpftool) is taken after each step.
# Writes $OUT/rate.jsonl, one line per step.
#   rate_guest.sh OUT IPFT BACKENDS [BASE_IPFT]
set -u
OUT=$1
IPFT=$2
BACKENDS=$3
BASE_IPFT=${4:-}
STEP_S=${STEP_S:-3}
FLOOD_COUNT=${FLOOD_COUNT:-2000}
mkdir -p "$OUT"
exec 2> "$OUT/guest.log"
set -x
. "$(dirname "$0")/../tests/e2e/topology.sh"

# Events lost so far by the one ipft running (sum over CPUs).
lost_so_far() {
	bpftool map dump name ipft_lost --json 2>/dev/null | python3 -c '
import json, sys
def ints(v):
    if isinstance(v, int): yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            if k not in ("key", "cpu"): yield from ints(x)
    elif isinstance(v, list):
        for x in v: yield from ints(x)
try:
    entries = json.load(sys.stdin)
    print(sum(ints([e.get("formatted", e).get("values", []) for e in entries])))
except Exception:
    print(-1)'
}

# step INTERVAL COUNT: marked pings (ping's -i; 0: flood), prints
# "sent received seconds" as ping counts them.
step() {
	local args=(-q -c "$2")
	if [ "$1" = 0 ]; then args+=(-f); else args+=(-i "$1"); fi
	ip netns exec a ping "${args[@]}" 10.0.0.2 2>&1 |
		awk '/packets transmitted/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "packets") s = $i; if ($(i+1) == "received,") r = $i; if ($i == "time") t = $(i+1) } }
		     END { sub("ms", "", t); printf "%d %d %.3f\n", s, r, t / 1000 }'
}

# ladder BUILD BINARY BACKEND
ladder() {
	local build=$1 binary=$2 backend=$3 pid name=$1_$3 interval count before after sent received secs
	"$binary" -b "$backend" -m $MARK > /dev/null 2> "$OUT/$name.err" &
	pid=$!
	while ! grep -q "Trace ready!" "$OUT/$name.err"; do
		kill -0 $pid 2>/dev/null || return
		sleep 0.2
	done
	for interval in 0.02 0.01 0.005 0.002 0.001 0.0005 0; do
		if [ $interval = 0 ]; then
			count=$FLOOD_COUNT
		else
			count=$(awk -v s="$STEP_S" -v i=$interval 'BEGIN { printf "%d", s / i }')
		fi
		before=$(lost_so_far)
		read -r sent received secs < <(step $interval "$count")
		after=$(lost_so_far)
		echo "{\"kernel\":\"$(uname -r)\",\"backend\":\"$backend\",\"build\":\"$build\",\"interval\":$interval,\"sent\":$sent,\"received\":$received,\"seconds\":$secs,\"lost\":$((after - before))}" >> "$OUT/rate.jsonl"
	done
	kill -INT $pid
	wait $pid
}

for backend in $BACKENDS; do
	ladder this "$IPFT" "$backend"
	[ -n "$BASE_IPFT" ] && ladder base "$BASE_IPFT" "$backend"
done
echo done > "$OUT/done"
