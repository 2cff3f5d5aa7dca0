# Sourced at the end of tests/e2e/guest.sh: the outputs made for viewers,
# checked by tests/e2e/outputs.rs with readers that are not ipft's.
# Short on purpose: one run per backend, a dozen functions, two pings.

# Perfetto trace of function_graph over loopback in netns a (the mark
# survives, so the receive path is seen from ip_rcv on), on every backend
# with returns; decoded on the host by Perfetto's own Python bindings.
ip netns exec a iptables -t raw -A OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
PERFETTO_FUNCS='^(ip_output|ip_finish_output2?|__dev_queue_xmit|netif_rx_internal|__netif_receive_skb(_one_core)?|ip_rcv|ip_local_deliver|icmp_rcv|icmp_reply|kfree_skbmem)$'
for backend in ftrace kprobe kprobe-multi; do
	name=perfetto_$backend
	if start_ipft $name -m $MARK -t function_graph -b $backend -o perfetto -w "$OUT/$name.pftrace" -r "$PERFETTO_FUNCS"; then
		ip netns exec a ping -c 2 -i 0.3 127.0.0.1 > "$OUT/$name.ping" 2>&1
		sleep 0.5
		stop_ipft $name
	fi
done
ip netns exec a iptables -t raw -D OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
