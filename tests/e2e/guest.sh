#!/bin/bash
# Runs inside a virtme-ng guest: sets up two network namespaces joined by
# veth pairs, runs ipft scenarios against real marked traffic and writes every
# output to $OUT for tests/e2e.rs to check on the host.
#   guest.sh OUT IPFT_BINARY
#
# Time: every process started costs a few tenths of a second under
# emulation, and every ipft start-up seconds (kernel BTF, kallsyms, loading
# its programs). So instances that need the same traffic run side by side
# and share it (launch_ipft ... ; wait_ready ...; traffic; stop_ipft ...),
# waiting uses shell builtins only, and the scenarios that are not about
# scale trace named functions (-r) only: one full attach per backend.
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

# nap SECONDS: sleep without starting a process (a read that times out on a
# FIFO nobody writes to).
NAP_FIFO=$(mktemp -u /tmp/ipft-nap.XXXXXX)
mkfifo "$NAP_FIFO"
exec {NAP_FD}<> "$NAP_FIFO"
nap() {
	local nothing
	read -r -t "$1" -u "$NAP_FD" nothing
	return 0
}

declare -A IPFT_PID

# exited PID: the process is gone or a zombie. (Not `kill -0`, which a
# zombie passes: a Debian 6.1 guest under load waited out the 10 minutes
# for an ipft that had long failed.)
exited() {
	local state
	[ -r "/proc/$1/stat" ] || return 0
	read -r _ _ state _ < "/proc/$1/stat" 2>/dev/null || return 0
	[ "$state" = Z ]
}

# Starts ipft in the background (output to $1.out, stderr to $1.err) and
# returns at once.
launch_ipft() {
	local name=$1
	shift
	: > "$OUT/$name.err" # (there before wait_ready reads it)
	"$IPFT" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
	IPFT_PID[$name]=$!
	echo $! > "$OUT/$name.pid"
}

# Waits until every named ipft has said "Trace ready!" (reading its stderr
# as it grows); one that exits first gets its exit status in $name.rc.
# Fails if any of them did not get ready.
wait_ready() {
	local xtrace=$- name pid fd line rest ready fatal failed=0 i j
	set +x # (one trace line per line read would flood guest.log)
	for name; do
		pid=${IPFT_PID[$name]-}
		[ -n "$pid" ] || { failed=1; continue; }
		exec {fd}< "$OUT/$name.err"
		rest= ready= fatal=
		for ((i = 0; i < 6000; i++)); do # 10 minutes
			while IFS= read -r -u "$fd" line; do
				if [[ $rest$line == *"Trace ready!"* ]]; then
					ready=1
					break
				fi
				# ipft's errors are one line, then it exits.
				[[ $rest$line == "ipft: "* ]] && fatal=1
				rest=
			done
			[ -n "$ready" ] && break
			rest+=$line # a line still being written
			if [ -n "$fatal" ] || exited "$pid"; then
				# An error line is followed by the exit; never wait
				# forever for a process that goes on.
				for ((j = 0; j < 100; j++)); do
					exited "$pid" && break
					nap 0.1
				done
				exited "$pid" || kill -9 "$pid"
				wait "$pid"
				echo $? > "$OUT/$name.rc"
				unset "IPFT_PID[$name]"
				break
			fi
			nap 0.1
		done
		exec {fd}<&-
		if [ -n "$ready" ]; then
			echo "+ ${EPOCHREALTIME} $name: ready"
		else
			echo "+ ${EPOCHREALTIME} $name: not ready"
			failed=1
		fi
	done
	[[ $xtrace == *x* ]] && set -x
	return $failed
}

# Starts ipft and waits for "Trace ready!".
start_ipft() {
	launch_ipft "$@"
	wait_ready "$1"
}

# Waits for ipft instances to exit (after a SIGINT) and records their status.
reap_ipft() {
	local name pid
	for name; do
		pid=${IPFT_PID[$name]-}
		[ -n "$pid" ] || continue
		wait "$pid"
		echo $? > "$OUT/$name.rc"
		unset "IPFT_PID[$name]"
	done
}

# Stops each named ipft as Ctrl-C does, one after the other: the kprobe
# backend expedites RCU while it detaches and then puts the setting back,
# which overlapping detaches would get wrong.
stop_ipft() {
	local name pid
	for name; do
		pid=${IPFT_PID[$name]-}
		[ -n "$pid" ] || continue
		kill -INT "$pid"
		reap_ipft "$name"
	done
}

# Every event of a ping is emitted by the time ping exits (it reads each
# reply), and ipft empties its buffer when stopped: no wait needed after.
marked_ping() {
	ip netns exec a ping -c 3 -i 0.2 10.0.0.2 > "$OUT/$1.ping" 2>&1
}

unmarked_udp() {
	ip netns exec a bash -c 'for i in $(seq 1 200); do echo x > /dev/udp/10.0.1.2/8888; done' 2>/dev/null
}

# A marked ping while unmarked UDP flows in parallel.
mixed_traffic() {
	unmarked_udp &
	local udp=$!
	marked_ping "$1"
	wait $udp
}

# Work that needs no tracing (summaries of saved outputs), run while the
# last full attach detaches: add commands with AT_END+=(...).
AT_END=()

# The scenarios that are not about scale trace the ~20 functions of the
# ping and UDP paths by name: attaching and detaching cost per function
# (0.1 s per fentry trampoline on 6.1), and the whole CI run must stay under
# 45 minutes for three guests.
PINGPATH='^(ip_output|ip_finish_output2?|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__netif_receive_skb(_one_core)?|ip_rcv(_core)?|ip_local_deliver(_finish)?|icmp_rcv|icmp_echo|icmp_reply|__udp4_lib_rcv|udp_rcv|udp_queue_rcv_skb|consume_skb|kfree_skbmem)$'

# Real-time kernels (PREEMPT_RT, rcu_normal = 1): each kprobe's and fentry
# program's removal waits for normal grace periods (~0.7 s per kprobe), so
# the full kprobe and fentry attaches trace the ping path by name there;
# kprobe-multi, which detaches whole links, stays the full attach.
FULL=()
if [ "$(cat /sys/kernel/realtime 2>/dev/null)" = 1 ]; then
	FULL=(-r "$PINGPATH")
	echo 1 > "$OUT/realtime"
fi

scenario full_kprobe
# Every skb function attached with kprobes, a marked ping. The kprobe
# backend expedites RCU while detaching only. (No other traffic beside the
# full attaches, so that every event is the ping's.)
cat /sys/kernel/rcu_expedited > "$OUT/rcu_expedited.before"
launch_ipft full -m $MARK -o json -v -b kprobe "${FULL[@]}"
# Beside it, on the same ping: the listing (after veth, a module on the
# distro kernels, is loaded), the tracepoint backend, and a mark nothing
# has.
{
	"$IPFT" -l -v > "$OUT/list.out" 2> "$OUT/list.err"
	echo $? > "$OUT/list.rc"
	"$IPFT" -l --module-regex '^veth$' > "$OUT/list_veth.out" 2> "$OUT/list_veth.err"
} &
listing=$!
launch_ipft tracepoint -m $MARK -o json -b tracepoint
launch_ipft nomatch -m 0x1234 -o json -r "$PINGPATH"
if wait_ready full; then
	wait_ready tracepoint nomatch
	cat /sys/kernel/rcu_expedited > "$OUT/rcu_expedited.tracing"
	marked_ping full
fi
stop_ipft tracepoint nomatch full
cat /sys/kernel/rcu_expedited > "$OUT/rcu_expedited.after"
wait $listing

scenario full_kprobe_multi
# kprobe-multi on every skb function (the custom 6.1 and Debian's 6.12
# kernels have it, Debian's 6.1 refuses it), a marked ping.
if start_ipft multi -m $MARK -o json -v -b kprobe-multi; then
	marked_ping multi
fi
stop_ipft multi
# (ftrace on every skb function comes last, see full_ftrace)

scenario mixed
# A marked ping while unmarked UDP flows in parallel: the UDP functions
# stay silent. Beside it, on the same traffic: the aggregate output of the
# same packets (--mask: it matches on the low 16 bits only), and the
# generated extension skeleton on the function backends (the ftrace backend
# loads copies of the linked program, extension included).
"$IPFT" --gen bpf-module-skeleton > "$OUT/ext.c"
launch_ipft mixed -m $MARK -o json -r "$PINGPATH"
launch_ipft agg -m 0xbeef --mask 0xffff -o aggregate -r "$PINGPATH"
for backend in ftrace kprobe; do
	launch_ipft ext_$backend -m $MARK -b $backend -o json -e "$OUT/ext.c" -r "$PINGPATH"
done
wait_ready mixed agg ext_ftrace ext_kprobe
mixed_traffic mixed
stop_ipft mixed agg ext_ftrace ext_kprobe

scenario drops
# Packets dropped by netfilter, seen by the tracepoint backend and by the
# drop functions (auto backend): Linux 6.11+ frees through
# sk_skb_reason_drop (skb its second parameter), 6.1 through
# kfree_skb_reason.
ip netns exec b iptables -A INPUT -p icmp -s 10.0.0.1 -j DROP
# Beside them, the control of the mixed scenario's unmarked UDP: with
# the UDP traffic marked (with a mark of its own, which the drop instances
# do not select), the UDP functions do show.
CONTROL_MARK=0xc0ffee
ip netns exec a iptables -t raw -A OUTPUT -d 10.0.1.2 -j MARK --set-mark $CONTROL_MARK
ip netns exec b iptables -t raw -A PREROUTING -s 10.0.1.1 -j MARK --set-mark $CONTROL_MARK
launch_ipft tpdrop -m $MARK -o json -b tracepoint
launch_ipft fndrop -m $MARK -o json -r '^(sk_skb_reason_drop|kfree_skb_reason|nf_hook_slow)$'
launch_ipft control -m $CONTROL_MARK -o json -r "$PINGPATH"
wait_ready tpdrop fndrop control
unmarked_udp &
udp=$!
ip netns exec a ping -c 2 -i 0.2 -W 1 10.0.0.2 > "$OUT/tpdrop.ping" 2>&1
wait $udp
stop_ipft tpdrop fndrop control
ip netns exec b iptables -D INPUT -p icmp -s 10.0.0.1 -j DROP
ip netns exec a iptables -t raw -D OUTPUT -d 10.0.1.2 -j MARK --set-mark $CONTROL_MARK
ip netns exec b iptables -t raw -D PREROUTING -s 10.0.1.1 -j MARK --set-mark $CONTROL_MARK

scenario graph
# function_graph over loopback in netns a (the mark survives, so the
# receive path is seen from ip_rcv on), per backend, both outputs at once.
ip netns exec a iptables -t raw -A OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
GRAPH='^(ip_output|ip_finish_output2?|__dev_queue_xmit|dev_hard_start_xmit|netif_rx_internal|__netif_receive_skb(_one_core)?|ip_rcv(_core)?|nf_hook_slow|ip_local_deliver(_finish)?|ip_protocol_deliver_rcu|icmp_rcv|icmp_echo|icmp_reply|consume_skb|kfree_skbmem)$'
for backend in ftrace kprobe kprobe-multi; do
	for output in aggregate json; do
		launch_ipft graph_${backend}_$output -m $MARK -t function_graph -b $backend -o $output -r "$GRAPH"
	done
	if wait_ready graph_${backend}_aggregate graph_${backend}_json; then
		ip netns exec a ping -c 3 -i 0.2 127.0.0.1 > "$OUT/graph_$backend.ping" 2>&1
	fi
	stop_ipft graph_${backend}_aggregate graph_${backend}_json
done
ip netns exec a iptables -t raw -D OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
# tracepoints have no returns: refused up front
"$IPFT" -m $MARK -t function_graph -b tracepoint > /dev/null 2> "$OUT/graph_tracepoint.err"
echo $? > "$OUT/graph_tracepoint.rc"

scenario flood
# Flood: a marked ping flood with a deliberately small buffer that the
# reader drains only on its 50 ms poll (no wakeups: a one-page ring holds
# about a hundred events, the flood makes thousands in 50 ms, so it must
# lose), then with the default buffer (64 pages) and wakeups; lost events are counted,
# memory stays bounded. One after the other: the default buffer's losses
# are measured alone (beside the other instance, on a busy host, they
# passed the 5% bound).
for pages in 1 64; do
	name=flood_$pages
	starve=
	[ $pages = 1 ] && starve="--perf-wakeup-events 1000000"
	if start_ipft $name -m $MARK -v --perf-page-count $pages $starve -r "$PINGPATH"; then
		timeout 300 ip netns exec a ping -f -c 2000 10.0.0.2 > "$OUT/$name.ping" 2>&1
	fi
	stop_ipft $name
done

scenario gso
# An ipftrace2 extension, unchanged: GSO flags of TCP segments a -> b, in
# both outputs at once.
GSO="$(dirname "$0")/../ext/gso.c"
ip netns exec b busybox nc -l -p 5001 > /dev/null &
nc_pid=$!
launch_ipft gso_json -m $MARK -b kprobe -o json -e "$GSO" -r '^(ip_output|__dev_queue_xmit|veth_xmit)$'
launch_ipft gso_agg -m $MARK -b kprobe -e "$GSO" -r '^(ip_output|__dev_queue_xmit|veth_xmit)$'
# Beside them, SIGKILL: the kernel detaches everything when ipft's
# descriptors close (checked at the end, nothing_left).
launch_ipft killed -m $MARK -b kprobe -r "$PINGPATH"
if wait_ready killed; then
	kill -9 "${IPFT_PID[killed]}"
	reap_ipft killed
fi
if wait_ready gso_json gso_agg; then
	ip netns exec a bash -c 'head -c 300000 /dev/zero > /dev/tcp/10.0.0.2/5001'
	nap 1
fi
kill $nc_pid 2>/dev/null
stop_ipft gso_json gso_agg

# Packet selection and tracking.
. "$(dirname "$0")/select.sh"
# Packet metadata, verdicts, summary.
. "$(dirname "$0")/meta.sh"

# Drops: reasons and stacks.
. "$(dirname "$0")/drops.sh"

# Outputs for viewers (Perfetto).
. "$(dirname "$0")/outputs.sh"

scenario background_detach
# The select scenarios removed the marks of topology.sh: back (for this
# scenario's ping and the full fentry attach after it).
topology_marks -A
# On a terminal (script(1) gives ipft one) Ctrl-C gives the prompt back at
# once: the results are printed, then a background process removes the
# probes holding the detach lock. Timed from SIGINT to ipft's exit; then
# the lock is waited for and no ipft program may remain (bpftool): nothing
# else traces meanwhile.
export IPFT_DETACH_LOCK=/tmp/ipft-detach.lock
: > "$OUT/bg.err" # (there before wait_ready reads it)
script -qfc "echo ipft-pid \$\$; exec $IPFT -b kprobe -m $MARK -v -r '$PINGPATH'" /dev/null \
	< /dev/null > "$OUT/bg.err" 2>&1 &
IPFT_PID[bg]=$!
bg_script=$!
if wait_ready bg; then
	marked_ping bg
	bg_ipft=
	while IFS= read -r line; do
		if [[ $line == "ipft-pid "* ]]; then
			bg_ipft=${line#ipft-pid }
			bg_ipft=${bg_ipft%%[!0-9]*}
			break
		fi
	done < "$OUT/bg.err"
	interrupted=$EPOCHREALTIME
	kill -INT "$bg_ipft"
	until exited "$bg_ipft"; do nap 0.01; done
	echo "$interrupted $EPOCHREALTIME" > "$OUT/bg.times"
	wait "$bg_script"
	unset "IPFT_PID[bg]"
	flock "$IPFT_DETACH_LOCK" true
	echo $? > "$OUT/bg_lock.rc"
	bpftool prog show > "$OUT/bg.bpftool" 2>&1
fi
unset IPFT_DETACH_LOCK

scenario full_ftrace
# ftrace (fentry) on every skb function, a marked ping. Last: detaching
# ~1,500 fentry trampolines takes minutes of RCU-tasks grace periods with
# the kernel's ftrace_lock held, during which no other tracing could start;
# work that needs none (AT_END) runs then.
if start_ipft ftrace -m $MARK -o json -v -b ftrace "${FULL[@]}"; then
	marked_ping ftrace
	kill -INT "${IPFT_PID[ftrace]}"
	# Minutes of grace periods from here on, the vCPUs mostly idle: the
	# host boots the next guest now (tests/e2e/guests.rs).
	: > "$OUT/quiet"
fi
for work in "${AT_END[@]}"; do
	$work
done
reap_ipft ftrace

scenario nothing_left
# No ipft kprobe may remain once ipft has exited.
# (perf-event kprobes are not in kprobe_events; debugfs lists every kprobe)
cat /sys/kernel/tracing/kprobe_events > "$OUT/kprobe_events.after" 2>&1
cat /sys/kernel/debug/kprobes/list > "$OUT/kprobes_list.after" 2>&1
scenario
echo done > "$OUT/done"
