#!/bin/bash
# Runs inside a benchmark guest: for every backend the kernel supports,
# attaches ipft to every skb function and measures attach/detach wall time,
# marked-flood throughput and losses, overhead on unmarked traffic, and peak
# RSS. Writes one JSON object per backend to $OUT/results.jsonl.
#   guest.sh OUT IPFT_BINARY FLOOD_COUNT
set -u
OUT=$1
IPFT=$2
COUNT=${3:-5000}
mkdir -p "$OUT"
exec 2> "$OUT/guest.log"
set -x
. "$(dirname "$0")/../tests/e2e/topology.sh"

now() { date +%s.%N; }

# Packets per second of a flood ping: "N received ... time Tms".
flood_pps() {
	ip netns exec a ping -f -q -c "$COUNT" "$1" 2>&1 |
		awk '/packets transmitted/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "received,") r = $i; if ($i == "time") t = $(i+1) } }
		     END { sub("ms", "", t); if (t > 0) printf "%.1f", r / (t / 1000); else print 0 }'
}

baseline=$(flood_pps 10.0.1.2)
echo "{\"kernel\":\"$(uname -r)\",\"baseline_unmarked_pps\":$baseline}" > "$OUT/baseline.json"

# Real-time kernels (PREEMPT_RT, rcu_normal): removing one kprobe or fentry
# program waits for normal RCU grace periods (~0.7 s each), so every skb
# function would take over 20 minutes to detach: there kprobe and ftrace
# attach the ping path's functions by name, and the row says how many.
narrow=()
realtime=false
if [ "$(cat /sys/kernel/realtime 2>/dev/null)" = 1 ]; then
	realtime=true
	narrow=(-r '^(ip_output|ip_finish_output2?|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__netif_receive_skb(_one_core)?|ip_rcv(_core)?|ip_local_deliver(_finish)?|icmp_rcv|icmp_echo|icmp_reply|__udp4_lib_rcv|udp_rcv|udp_queue_rcv_skb|consume_skb|kfree_skbmem)$')
fi

for backend in kprobe-multi ftrace kprobe tracepoint; do
	"$IPFT" -l -b $backend > /dev/null 2> "$OUT/$backend.check" || continue
	args=()
	case $backend in kprobe | ftrace) args=("${narrow[@]}") ;; esac
	start=$(now)
	"$IPFT" -m $MARK -b $backend -v -o aggregate "${args[@]}" > /dev/null 2> "$OUT/$backend.err" &
	pid=$!
	while ! grep -q "Trace ready!" "$OUT/$backend.err"; do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	ready=$(echo "$(now) - $start" | bc)
	unmarked=$(flood_pps 10.0.1.2)
	t0=$(now)
	marked=$(flood_pps 10.0.0.2)
	t1=$(now)
	kill -INT $pid
	stop=$(now)
	wait $pid
	exit_s=$(echo "$(now) - $stop" | bc)
	err="$OUT/$backend.err"
	functions=$(sed -n 's/^attach: backend [a-z-]*, \([0-9]*\) functions attached.*/\1/p' "$err")
	refused=$(sed -n 's/.* \([0-9]*\) refused by the kernel.*/\1/p' "$err")
	attach_s=$(sed -n 's/^attach: .* in \([0-9.]*\)s (wall)/\1/p' "$err")
	detach_s=$(sed -n 's/^detach: \([0-9.]*\)s (wall)/\1/p' "$err")
	# ipft's own estimate at start-up, to hold against the measured detach.
	estimate_s=$(sed -n 's/^detach: estimated \([0-9.]*\)s .*/\1/p' "$err")
	received=$(sed -n 's/^\([0-9]*\) events received.*/\1/p' "$err")
	lost=$(sed -n 's/.*received, \([0-9]*\) .*lost.*/\1/p' "$err")
	rss=$(sed -n 's/^peak memory (RSS): \([0-9]*\) KiB/\1/p' "$err")
	flood_s=$(echo "$t1 - $t0" | bc)
	echo "{\"kernel\":\"$(uname -r)\",\"backend\":\"$backend\",\"functions\":${functions:-0},\"refused\":${refused:-0},\"ready_s\":$ready,\"attach_s\":${attach_s:-0},\"detach_s\":${detach_s:-0},\"estimated_detach_s\":${estimate_s:-0},\"realtime\":$realtime,\"exit_after_sigint_s\":$exit_s,\"marked_pps\":$marked,\"events_received\":${received:-0},\"events_lost\":${lost:-0},\"flood_s\":$flood_s,\"unmarked_pps_attached\":$unmarked,\"baseline_unmarked_pps\":$baseline,\"peak_rss_kib\":${rss:-0}}" >> "$OUT/results.jsonl"
done
echo done > "$OUT/done"
