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

scenario pcapng
# pcap-ng: pings a -> b selected by expression (from __ip_local_out on,
# before any mark is set), at a dozen functions before and after the MAC
# header is set, dissected on the host by tshark. On one round of pings:
# the kprobe backend, a JSON instance beside it that sees the same events,
# and -w - into a pipe (as in `ipft -o pcapng -w - | tshark -r -`) with
# function_graph on the automatic backend, whose returns carry no bytes.
stat -L -c %i /run/netns/a > "$OUT/netns_a.inode"
stat -L -c %i /run/netns/b > "$OUT/netns_b.inode"
PCAP_FUNCS='^(__ip_local_out|ip_output|ip_finish_output2|__dev_queue_xmit|dev_hard_start_xmit|veth_xmit|__netif_receive_skb|__netif_receive_skb_one_core|ip_rcv|ip_local_deliver|icmp_rcv|icmp_reply)$'
PCAP_EXPR='icmp and host 10.0.0.2'
launch_ipft pcapng_kprobe -b kprobe -o pcapng -w "$OUT/pcapng_kprobe.pcapng" -r "$PCAP_FUNCS" "$PCAP_EXPR"
launch_ipft pcapng_json -b kprobe -o json -r "$PCAP_FUNCS" "$PCAP_EXPR"
# The pipe: a wrapper execs ipft with its stdout into a pipe to cat, so
# that the pid launch_ipft keeps is ipft's.
cat > "$OUT/ipft_piped.sh" <<PIPED
#!/bin/bash
exec > >(cat > "$OUT/pcapng_pipe.pcapng")
exec "$IPFT" "\$@"
PIPED
chmod +x "$OUT/ipft_piped.sh"
REAL_IPFT=$IPFT
IPFT=$OUT/ipft_piped.sh
launch_ipft pcapng_pipe -t function_graph -o pcapng -w - --snaplen 96 -r "$PCAP_FUNCS" "$PCAP_EXPR"
IPFT=$REAL_IPFT
if wait_ready pcapng_kprobe pcapng_json pcapng_pipe; then
	ip netns exec a ping -c 2 -i 0.3 10.0.0.2 > "$OUT/pcapng.ping" 2>&1
fi
stop_ipft pcapng_kprobe pcapng_json pcapng_pipe
nap 1 # (cat writes what is left in the pipe)
