#!/bin/bash
# Runs inside a guest of bench/prompt.sh: how long the shell waits after
# Ctrl-C. ipft runs on a pseudo-terminal (script(1)), as a user's would,
# traces the ping path's functions by name on each backend, sees marked
# pings, and gets SIGINT; the time from the signal to ipft's exit (its
# results printed, the detach handed to a background process) is what the
# prompt waits. Then the background detach is waited for and bpftool must
# list no ipft program. ROUNDS per backend. Writes $OUT/prompt.jsonl.
#   prompt_guest.sh OUT IPFT ROUNDS
set -u
OUT=$1
IPFT=$2
ROUNDS=${3:-3}
mkdir -p "$OUT"
exec 2> "$OUT/guest.log"
set -x
. "$(dirname "$0")/../tests/e2e/topology.sh"
export IPFT_DETACH_LOCK=/tmp/ipft-detach.lock
PINGPATH='^(ip_output|ip_finish_output2?|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__netif_receive_skb(_one_core)?|ip_rcv(_core)?|ip_local_deliver(_finish)?|icmp_rcv|icmp_echo|icmp_reply|__udp4_lib_rcv|udp_rcv|udp_queue_rcv_skb|consume_skb|kfree_skbmem)$'

# exited PID: gone, or a zombie.
exited() {
	local state
	[ -r "/proc/$1/stat" ] || return 0
	read -r _ _ state _ < "/proc/$1/stat" 2>/dev/null || return 0
	[ "$state" = Z ]
}

for backend in kprobe kprobe-multi ftrace tracepoint; do
	"$IPFT" -l -b $backend > /dev/null 2>&1 || continue
	regex=$PINGPATH
	[ $backend = tracepoint ] && regex=.
	for round in $(seq 1 "$ROUNDS"); do
		err=$OUT/$backend.$round.err
		: > "$err"
		script -qfc "echo ipft-pid \$\$; exec $IPFT -v -b $backend -m $MARK -r '$regex'" /dev/null \
			< /dev/null > "$err" 2>&1 &
		wrapper=$!
		until grep -q "Trace ready!" "$err"; do
			exited $wrapper && break
			sleep 0.1
		done
		ip netns exec a ping -c 3 -i 0.2 10.0.0.2 > /dev/null 2>&1
		pid=$(sed -n 's/^ipft-pid \([0-9]*\).*/\1/p' "$err")
		t0=$EPOCHREALTIME
		kill -INT "$pid"
		until exited "$pid"; do sleep 0.01; done
		t1=$EPOCHREALTIME
		wait $wrapper
		flock "$IPFT_DETACH_LOCK" true
		left=$(bpftool prog show 2>/dev/null | grep -c " name ipft_")
		packets=$(sed -n 's/^\([0-9]*\) packets:.*/\1/p' "$err" | tail -1)
		echo "{\"kernel\":\"$(uname -r)\",\"backend\":\"$backend\",\"round\":$round,\"prompt_s\":$(echo "$t1 - $t0" | bc),\"packets\":${packets:-0},\"programs_left\":$left}" >> "$OUT/prompt.jsonl"
	done
done
echo done > "$OUT/done"
