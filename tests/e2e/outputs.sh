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

# pcap-ng: pings a -> b selected by expression (from __ip_local_out on,
# before any mark is set), at a dozen functions before and after the MAC
# header is set; a JSON instance beside it sees the same events. Read on the
# host by tshark.
stat -L -c %i /run/netns/a > "$OUT/netns_a.inode"
stat -L -c %i /run/netns/b > "$OUT/netns_b.inode"
PCAP_FUNCS='^(__ip_local_out|ip_output|ip_finish_output2|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__netif_receive_skb|__netif_receive_skb_one_core|ip_rcv|ip_local_deliver|icmp_rcv|icmp_reply)$'
PCAP_EXPR='icmp and host 10.0.0.2'
if start_ipft pcapng_kprobe -b kprobe -o pcapng -w "$OUT/pcapng_kprobe.pcapng" -r "$PCAP_FUNCS" "$PCAP_EXPR" &&
	start_ipft pcapng_json -b kprobe -o json -r "$PCAP_FUNCS" "$PCAP_EXPR"; then
	ip netns exec a ping -c 2 -i 0.3 10.0.0.2 > "$OUT/pcapng_kprobe.ping" 2>&1
	sleep 0.5
	stop_ipft pcapng_kprobe
	stop_ipft pcapng_json
fi
# -w - into a pipe, as in `ipft -o pcapng -w - | tshark -r -`: a wrapper
# execs ipft with stdout into a pipe to cat, so that start_ipft's pid is
# ipft's. function_graph on the automatic backend: returns carry no bytes.
cat > "$OUT/ipft_piped.sh" <<PIPED
#!/bin/bash
exec > >(cat > "$OUT/pcapng_pipe.pcapng")
exec "$IPFT" "\$@"
PIPED
chmod +x "$OUT/ipft_piped.sh"
REAL_IPFT=$IPFT
IPFT=$OUT/ipft_piped.sh
if start_ipft pcapng_pipe -t function_graph -o pcapng -w - --snaplen 96 -r "$PCAP_FUNCS" "$PCAP_EXPR"; then
	ip netns exec a ping -c 2 -i 0.3 10.0.0.2 > "$OUT/pcapng_pipe.ping" 2>&1
	sleep 0.5
	stop_ipft pcapng_pipe
	sleep 1 # cat writes what is left in the pipe
fi
IPFT=$REAL_IPFT
