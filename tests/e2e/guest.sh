#!/bin/bash
# Runs inside a virtme-ng guest: sets up two network namespaces joined by
# veth pairs, runs ipft scenarios against real marked traffic and writes every
# output to $OUT for tests/e2e.rs to check on the host.
#   guest.sh OUT IPFT_BINARY
set -u
OUT=$1
IPFT=$2
mkdir -p "$OUT"
exec > "$OUT/guest.log" 2>&1
PS4='+ ${EPOCHREALTIME} ' # timestamps: where the guest's time goes
set -x

# Wall time per scenario: `scenario NAME` ends the running scenario (its
# seconds go to $OUT/timings, which scripts/test.sh prints) and starts NAME;
# `scenario` alone ends the last one. Builtins only: no process per call.
TIMINGS=$OUT/timings
SCENARIO=setup
SCENARIO_START=${EPOCHREALTIME/./}
scenario() {
	local now=${EPOCHREALTIME/./} ms
	ms=$(( (now - SCENARIO_START) / 1000 ))
	printf '%d.%d %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$SCENARIO" >> "$TIMINGS"
	SCENARIO=${1-} SCENARIO_START=$now
}

. "$(dirname "$0")/topology.sh"
uname -r > "$OUT/uname"

# Starts ipft in the background (output to $1.out, stderr to $1.err) and
# waits for "Trace ready!".
start_ipft() {
	local name=$1
	shift
	"$IPFT" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
	echo $! > "$OUT/$name.pid"
	local pid
	pid=$(cat "$OUT/$name.pid")
	for _ in $(seq 1 1200); do
		grep -q "Trace ready!" "$OUT/$name.err" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			echo $? > "$OUT/$name.rc"
			return 1
		fi
		sleep 0.25
	done
	return 1
}

stop_ipft() {
	local name=$1 pid
	pid=$(cat "$OUT/$name.pid")
	kill -INT "$pid"
	wait "$pid"
	echo $? > "$OUT/$name.rc"
}

marked_ping() {
	ip netns exec a ping -c 3 -i 0.5 10.0.0.2 > "$OUT/$1.ping" 2>&1
	sleep 0.5
}

unmarked_udp() {
	ip netns exec a bash -c 'for i in $(seq 1 200); do echo x > /dev/udp/10.0.1.2/8888; done' 2>/dev/null
}

scenario listing
# Listing, after veth (a module on the distro kernel) is loaded.
"$IPFT" -l -v > "$OUT/list.out" 2> "$OUT/list.err"; echo $? > "$OUT/list.rc"
"$IPFT" -l --module-regex '^veth$' > "$OUT/list_veth.out" 2> "$OUT/list_veth.err"

scenario full_kprobe
# Scenario 1: every skb function attached, marked ping; per backend.
cat /sys/kernel/rcu_expedited > "$OUT/rcu_expedited.before"
if start_ipft full -m $MARK -o json -v -b kprobe; then
	cat /sys/kernel/rcu_expedited > "$OUT/rcu_expedited.tracing"
	marked_ping full
	stop_ipft full
	cat /sys/kernel/rcu_expedited > "$OUT/rcu_expedited.after"
fi
scenario full_kprobe_multi
# kprobe-multi: the custom kernel has it, Debian's refuses it.
if start_ipft multi -m $MARK -o json -v -b kprobe-multi; then
	marked_ping multi
	stop_ipft multi
fi

scenario full_ftrace
# ftrace (fentry) on every skb function.
if start_ipft ftrace -m $MARK -o json -v -b ftrace; then
	marked_ping ftrace
	stop_ipft ftrace
fi

scenario tracepoint
# tracepoint backend: the same ping, then a packet dropped by netfilter.
if start_ipft tracepoint -m $MARK -o json -b tracepoint; then
	marked_ping tracepoint
	stop_ipft tracepoint
fi
ip netns exec b iptables -A INPUT -p icmp -s 10.0.0.1 -j DROP
scenario drops
# The same drops seen by the drop functions (auto backend): Linux 6.11+
# frees through sk_skb_reason_drop (skb its second parameter), 6.1 through
# kfree_skb_reason.
if start_ipft tpdrop -m $MARK -o json -b tracepoint && start_ipft fndrop -m $MARK -o json -v -r '^(sk_skb_reason_drop|kfree_skb_reason|nf_hook_slow)$'; then
	ip netns exec a ping -c 2 -i 0.5 -W 1 10.0.0.2 > "$OUT/tpdrop.ping" 2>&1
	sleep 0.5
	stop_ipft tpdrop
	stop_ipft fndrop
fi
ip netns exec b iptables -D INPUT -p icmp -s 10.0.0.1 -j DROP

scenario graph
# function_graph over loopback in netns a (the mark survives, so the
# receive path is seen from ip_rcv on), per backend.
ip netns exec a iptables -t raw -A OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
# (named functions only: every traced function costs attach and detach time)
GRAPH='^(ip_output|ip_finish_output2?|__dev_queue_xmit|dev_hard_start_xmit|netif_rx_internal|__netif_receive_skb(_one_core)?|ip_rcv(_core)?|nf_hook_slow|ip_local_deliver(_finish)?|ip_protocol_deliver_rcu|icmp_rcv|icmp_echo|icmp_reply|consume_skb|kfree_skbmem)$'
for backend in ftrace kprobe kprobe-multi; do
	for output in aggregate json; do
		name=graph_${backend}_$output
		if start_ipft $name -m $MARK -t function_graph -b $backend -o $output -r "$GRAPH"; then
			ip netns exec a ping -c 3 -i 0.5 127.0.0.1 > "$OUT/$name.ping" 2>&1
			sleep 0.5
			stop_ipft $name
		fi
	done
done
ip netns exec a iptables -t raw -D OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
# tracepoints have no returns: refused up front
"$IPFT" -m $MARK -t function_graph -b tracepoint > /dev/null 2> "$OUT/graph_tracepoint.err"
echo $? > "$OUT/graph_tracepoint.rc"

# The scenarios below are not about scale: they trace the ~20 functions of
# the ping and UDP paths by name (not ~120 by prefix). Detaching
# costs per function (0.1 s per fentry trampoline on 6.1), and the whole CI
# run must stay under 45 minutes for three guests.
PINGPATH='^(ip_output|ip_finish_output2?|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__netif_receive_skb(_one_core)?|ip_rcv(_core)?|ip_local_deliver(_finish)?|icmp_rcv|icmp_echo|icmp_reply|__udp4_lib_rcv|udp_rcv|udp_queue_rcv_skb|consume_skb|kfree_skbmem)$'


scenario mixed
# Scenario 2: marked ping while unmarked UDP flows in parallel.
if start_ipft mixed -m $MARK -o json -r "$PINGPATH"; then
	unmarked_udp &
	udp=$!
	marked_ping mixed
	wait $udp
	stop_ipft mixed
fi
scenario control
# Control for scenario 2: with the UDP traffic marked too, UDP functions do show.
ip netns exec a iptables -t raw -A OUTPUT -d 10.0.1.2 -j MARK --set-mark $MARK
ip netns exec b iptables -t raw -A PREROUTING -s 10.0.1.1 -j MARK --set-mark $MARK
if start_ipft control -m $MARK -o json -r "$PINGPATH"; then
	unmarked_udp
	stop_ipft control
fi
ip netns exec a iptables -t raw -D OUTPUT -d 10.0.1.2 -j MARK --set-mark $MARK
ip netns exec b iptables -t raw -D PREROUTING -s 10.0.1.1 -j MARK --set-mark $MARK

scenario aggregate
# Scenario 3: aggregate and JSON of the same packets, two ipft at once.
# --mask: the aggregate instance matches on the low 16 bits only.
if start_ipft agg -m 0xbeef --mask 0xffff -o aggregate -r "$PINGPATH" && start_ipft aggjson -m $MARK -o json -r "$PINGPATH"; then
	marked_ping agg
	stop_ipft agg
	stop_ipft aggjson
fi

scenario flood
# Flood: a marked ping flood with a deliberately small buffer that the
# reader drains only on its 100 ms poll (no wakeups: a one-page ring holds
# about a hundred events, the flood makes thousands in 100 ms, so it must
# lose), then with the default buffer and wakeups; lost events are counted,
# memory stays bounded.
for pages in 1 8; do
	name=flood_$pages
	starve=
	[ $pages = 1 ] && starve="--perf-wakeup-events 1000000"
	if start_ipft $name -m $MARK -v --perf-page-count $pages $starve -r "$PINGPATH"; then
		timeout 300 ip netns exec a ping -f -c 5000 10.0.0.2 > "$OUT/$name.ping" 2>&1
		stop_ipft $name
	fi
done

scenario extension
# Extension: the generated skeleton, on the function backends (the ftrace
# backend loads copies of the linked program, extension included).
"$IPFT" --gen bpf-module-skeleton > "$OUT/ext.c"
for backend in ftrace kprobe; do
	if start_ipft ext_$backend -m $MARK -b $backend -o json -e "$OUT/ext.c" -r "$PINGPATH"; then
		marked_ping ext_$backend
		stop_ipft ext_$backend
	fi
done

scenario gso
# An ipftrace2 extension, unchanged: GSO flags of TCP segments a -> b, in
# both outputs at once.
GSO="$(dirname "$0")/../ext/gso.c"
if start_ipft gso_json -m $MARK -b kprobe -o json -e "$GSO" -r '^(ip_output|__dev_queue_xmit|veth_xmit)$' &&
	start_ipft gso_agg -m $MARK -b kprobe -e "$GSO" -r '^(ip_output|__dev_queue_xmit|veth_xmit)$'; then
	ip netns exec b busybox nc -l -p 5001 > /dev/null &
	nc_pid=$!
	sleep 1
	ip netns exec a bash -c 'head -c 300000 /dev/zero > /dev/tcp/10.0.0.2/5001'
	sleep 1
	kill $nc_pid 2>/dev/null
	stop_ipft gso_json
	stop_ipft gso_agg
fi

scenario nomatch
# Bad mark in the kernel's view: nothing matches.
if start_ipft nomatch -m 0x1234 -o json -r "$PINGPATH"; then
	marked_ping nomatch
	stop_ipft nomatch
fi

scenario killed
# SIGKILL: the kernel detaches everything when ipft's descriptors close.
if start_ipft killed -m $MARK -b kprobe -r "$PINGPATH"; then
	kill -9 "$(cat "$OUT/killed.pid")"
	wait "$(cat "$OUT/killed.pid")"
	sleep 2
fi

# Packet selection and tracking.
. "$(dirname "$0")/select.sh"

scenario nothing_left
# No ipft kprobe may remain once ipft has exited.
# (perf-event kprobes are not in kprobe_events; debugfs lists every kprobe)
cat /sys/kernel/tracing/kprobe_events > "$OUT/kprobe_events.after" 2>&1
cat /sys/kernel/debug/kprobes/list > "$OUT/kprobes_list.after" 2>&1
scenario
echo done > "$OUT/done"
