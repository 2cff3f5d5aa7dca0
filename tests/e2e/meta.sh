# Sourced by tests/e2e/guest.sh after select.sh: packet metadata, verdicts
# and the exit summary, checked by tests/e2e/meta.rs. IPv4 and IPv6 pings
# through the veth pair va (netns a) -> vb (netns b), selected by expression.
scenario meta
META_SEL='^(__ip_local_out|ip_output|ip6_output|nf_hook_slow|dev_hard_start_xmit|veth_xmit|__netif_receive_skb_core(\.constprop\.0)?|ip_rcv|ipv6_rcv|ip_local_deliver|ip6_input_finish|icmp_rcv|icmpv6_rcv|ping_rcv|ping_queue_rcv_skb|__sock_queue_rcv_skb|consume_skb|skb_free_head|kfree_skbmem)$'
ip -n a addr add fd00::1/64 dev va nodad
ip -n b addr add fd00::2/64 dev vb nodad
stat -L -c %i /run/netns/a > "$OUT/netns_a.inode"
stat -L -c %i /run/netns/b > "$OUT/netns_b.inode"
# Neighbours resolved first: only the echo packets match below.
ip netns exec a ping -6 -c 1 -W 2 fd00::2 > /dev/null 2>&1
# 2 IPv4 and 2 IPv6 echo requests and their replies, in JSON (backend
# chosen automatically) and in the aggregate output.
META_EXPR='(host 10.0.0.2 and icmp) or (host fd00::2 and icmp6 and ip6[40] >= 128 and ip6[40] <= 129)'
launch_ipft meta_json -o json -r "$META_SEL" "$META_EXPR"
launch_ipft meta_agg -b kprobe -r "$META_SEL" "$META_EXPR"
wait_ready meta_json meta_agg
ip netns exec a ping -c 2 -i 0.3 10.0.0.2 > "$OUT/meta.ping" 2>&1
ip netns exec a ping -6 -c 2 -i 0.3 fd00::2 > "$OUT/meta.ping6" 2>&1
stop_ipft meta_json meta_agg
