# Sourced at the end of tests/e2e/guest.sh: the outputs made for viewers,
# checked by tests/e2e/outputs.rs with readers that are not ipft's.
# Short on purpose: one run per backend, a dozen functions, two pings.

# Perfetto trace of function_graph over loopback in netns a (the mark
# survives, so the receive path is seen from ip_rcv on), on every backend
# with returns; decoded on the host by Perfetto's own Python bindings.
scenario outputs
ip netns exec a iptables -t raw -A OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
PERFETTO_FUNCS='^(ip_output|ip_finish_output2?|__dev_queue_xmit|netif_rx_internal|__netif_receive_skb(_one_core)?|ip_rcv|ip_local_deliver|icmp_rcv|icmp_reply|kfree_skbmem)$'
# The three backends side by side, on one round of pings.
for backend in ftrace kprobe kprobe-multi; do
	launch_ipft perfetto_$backend -m $MARK -t function_graph -b $backend -o perfetto -w "$OUT/perfetto_$backend.pftrace" -r "$PERFETTO_FUNCS"
done
# (traffic whether or not all are ready: a backend the kernel lacks fails alone)
wait_ready perfetto_ftrace perfetto_kprobe perfetto_kprobe-multi
ip netns exec a ping -c 2 -i 0.3 127.0.0.1 > "$OUT/perfetto.ping" 2>&1
stop_ipft perfetto_ftrace perfetto_kprobe perfetto_kprobe-multi
ip netns exec a iptables -t raw -D OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
