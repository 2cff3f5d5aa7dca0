# Sourced by tests/e2e/guest.sh after its scenarios: packet selection
# (pcap-filter expressions, namespace and device filters) and tracking
# (following a packet through NAT, namespaces, clones), checked by
# tests/e2e/select.rs. No marks unless the scenario is about marks: the mark
# rules of topology.sh are removed first. Instances that need the same
# traffic run side by side (see guest.sh).
scenario select_expr
for ns in a b; do ip netns exec $ns iptables -t raw -F; done
# The functions of the paths these scenarios take, by name (few, so that
# attaching and detaching stay short; see PINGPATH in guest.sh).
SEL='^(__ip_local_out|ip_output|ip_finish_output2?|nf_hook_slow|nf_nat_manip_pkt|__dev_queue_xmit|dev_queue_xmit_nit|dev_hard_start_xmit|veth_xmit|__netif_receive_skb(_one_core)?|ip_rcv(_core)?|ip_local_deliver(_finish)?|icmp_rcv|icmp_echo|icmp_reply|__udp4_lib_rcv|udp_rcv|udp_send_skb|tpacket_rcv|packet_rcv|arp_rcv|arp_process|consume_skb|skb_free_head|kfree_skbmem)$'

sel_ping() { # name [address]
	ip netns exec a ping -c 3 -i 0.2 "${2:-10.0.0.2}" > "$OUT/$1.ping" 2>&1
}

# An expression alone selects the pings to 10.0.0.2 and nothing else (UDP
# and pings to 10.0.1.2 flow at the same time), on every backend.
# tcpdump captures on vb meanwhile: a packet cloned for it (AF_PACKET) keeps
# its packet id (the replies sent on vb are cloned for the capture,
# dev_queue_xmit_nit; checked on expr_kprobe).
ip netns exec b tcpdump -i vb -w /dev/null icmp 2> "$OUT/tcpdump.err" &
tcpdump_pid=$!
for backend in kprobe kprobe-multi ftrace tracepoint; do
	regex="$SEL"
	[ $backend = tracepoint ] && regex=.
	launch_ipft expr_$backend -b $backend -o json -r "$regex" 'host 10.0.0.2' and icmp
done
wait_ready expr_kprobe expr_kprobe-multi expr_ftrace expr_tracepoint
# tcpdump says "listening on vb" once it captures (long before ipft is ready).
for ((i = 0; i < 300; i++)); do
	read -r -d '' line < "$OUT/tcpdump.err"
	[[ $line == *"listening on"* ]] && break
	nap 0.1
done
unmarked_udp &
udp=$!
ip netns exec a ping -c 2 -i 0.2 10.0.1.2 > /dev/null 2>&1
sel_ping expr
wait $udp
stop_ipft expr_kprobe expr_kprobe-multi expr_ftrace expr_tracepoint
kill $tcpdump_pid 2>/dev/null
wait $tcpdump_pid 2>/dev/null

scenario select_mark
# A mark set only in netns a: with --no-track the packet is lost where veth
# clears the mark; tracked (the default) it is followed into netns b.
# Beside them, function_graph across the veth pair: calls still open when
# the mark is cleared get their returns, on every backend (one
# function_graph backend per ping).
ip netns exec a iptables -t raw -A OUTPUT -d 10.0.0.2 -j MARK --set-mark $MARK
GRAPH_VETH='^(ip_output|ip_finish_output2|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__dev_forward_skb|skb_scrub_packet|netif_rx|ip_rcv|icmp_rcv)$'
for backend in ftrace kprobe kprobe-multi; do
	names=(graph_veth_$backend)
	[ $backend = ftrace ] && names+=(mark_notrack mark_track)
	launch_ipft graph_veth_$backend -m $MARK -t function_graph -b $backend -o json -r "$GRAPH_VETH"
	if [ $backend = ftrace ]; then
		launch_ipft mark_notrack -m $MARK --no-track -b kprobe -o json -r "$SEL"
		launch_ipft mark_track -m $MARK -b kprobe -o json -r "$SEL"
	fi
	if wait_ready "${names[@]}"; then
		sel_ping graph_veth_$backend
	fi
	stop_ipft "${names[@]}"
done
ip netns exec a iptables -t raw -F

scenario select_dnat
# DNAT: pings to 10.0.0.99 are rewritten to 10.0.0.2 in netns a, and followed
# after the rewrite, across the veth, to the reply's creation in netns b.
NAT=iptables
ip netns exec a iptables -t nat -A OUTPUT -d 10.0.0.99 -p icmp -j DNAT --to-destination 10.0.0.2 2>/dev/null || NAT=iptables-legacy
[ $NAT = iptables-legacy ] && ip netns exec a iptables-legacy -t nat -A OUTPUT -d 10.0.0.99 -p icmp -j DNAT --to-destination 10.0.0.2
echo $NAT > "$OUT/dnat.tool"
# The same packets in the aggregate output too (the README shows it).
launch_ipft dnat -b kprobe -o json -r "$SEL" 'dst host 10.0.0.99 and icmp'
launch_ipft dnat_agg -b kprobe -r "$SEL" 'dst host 10.0.0.99 and icmp'
# Beside them: a tracking map of one entry must overflow (a request and its
# reply are alive at once), and says so.
FLOOD_FUNCS='^(ip_rcv|icmp_rcv|icmp_echo|__dev_queue_xmit|consume_skb|kfree_skbmem|skb_free_head)$'
launch_ipft track_full -b kprobe -o json -r "$FLOOD_FUNCS" --track-max 1 icmp
if wait_ready dnat dnat_agg track_full; then
	sel_ping dnat 10.0.0.99
fi
stop_ipft dnat dnat_agg track_full
ip netns exec a $NAT -t nat -F

scenario select_filters
# Namespace and device filters, alone and AND-ed with an expression. ub
# (netns b) carries the UDP traffic, vb the pings.
NS_B=$(stat -L -c %i /run/netns/b)
echo $NS_B > "$OUT/netns_b.inode"
names=()
for sel in "ifname_ub:--filter-netns /run/netns/b --filter-ifname ub" \
	"ifname_vb:--filter-netns $NS_B --filter-ifname vb" \
	"ifname_vb_udp:--filter-netns /run/netns/b --filter-ifname vb udp" \
	"netns_b:--filter-netns /run/netns/b"; do
	name=${sel%%:*}
	names+=($name)
	# 200 datagrams dropped at a closed port: each with its drop stack; room
	# for all of them, so that the pings after them are never lost.
	# shellcheck disable=SC2086
	launch_ipft $name --no-track -b kprobe -o json --perf-page-count 64 -r "$SEL" ${sel#*:}
done
# Link-layer and network-layer expressions, each event matched on its own
# (--no-track): before the MAC header is set only the network header counts.
for e in "l2:ether proto 0x0800 and ether dst $(ip netns exec b cat /sys/class/net/vb/address)" "l3:icmp and dst host 10.0.0.2"; do
	name=${e%%:*}
	names+=($name)
	launch_ipft $name --no-track -b kprobe -o json -r "$SEL" "${e#*:}"
done
# ARP, resolved again for the pings below.
launch_ipft arp -b kprobe -o json -r "$SEL" arp
names+=(arp)
wait_ready "${names[@]}"
ip -n a neigh flush dev va
unmarked_udp
sel_ping filters
stop_ipft "${names[@]}"

scenario select_track_flood
# A flood of 8,000 pings, tracked: every packet has its own id although skb
# memory is reused. The stream goes to the guest's own /tmp (writing it to
# the shared folder is slower than the flood); its events are summed up
# (python3 is the host's) at the end, while the last full attach detaches,
# and the stream is deleted once summed.
SHARED_OUT=$OUT
OUT=$(mktemp -d /tmp/ipft-flood.XXXXXX)
FLOOD_DIR=$OUT
if start_ipft track_flood -b kprobe -o json -r "$FLOOD_FUNCS" --perf-page-count 256 icmp; then
	timeout 300 ip netns exec a ping -f -c 8000 10.0.0.2 > "$OUT/track_flood.ping" 2>&1
fi
stop_ipft track_flood
cp "$OUT"/track_flood.{err,rc,ping} "$SHARED_OUT/"
OUT=$SHARED_OUT
summarize_track_flood() {
	python3 "$(dirname "${BASH_SOURCE[0]}")/track_summary.py" < "$FLOOD_DIR/track_flood.out" > "$OUT/track_flood.summary"
	rm -rf "$FLOOD_DIR"
}
AT_END+=(summarize_track_flood)

scenario select_bad
# Bad selectors: one line, exit 2, nothing attached.
"$IPFT" 'host 10.0.0.2 and' > /dev/null 2> "$OUT/bad_expr.err"; echo $? > "$OUT/bad_expr.rc"
"$IPFT" --filter-netns /run/netns/nosuch > /dev/null 2> "$OUT/bad_netns.err"; echo $? > "$OUT/bad_netns.rc"
"$IPFT" --filter-netns /run/netns/b --filter-ifname nosuch0 > /dev/null 2> "$OUT/bad_ifname.err"; echo $? > "$OUT/bad_ifname.rc"
"$IPFT" -b kprobe > /dev/null 2> "$OUT/no_selector.err"; echo $? > "$OUT/no_selector.rc"
