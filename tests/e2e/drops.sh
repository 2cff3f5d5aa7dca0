# Sourced by tests/e2e/guest.sh after select.sh: packets the kernel drops,
# with the reason it gives and the stack where it happened, checked by
# tests/e2e/drops.rs. In netns b an iptables rule drops pings from netns a,
# and UDP datagrams reach a port nobody listens on; one ipft run per
# backend sees both. -r names no drop function: ipft attaches the kernel's
# own (kfree_skb_reason, sk_skb_reason_drop) anyway. --stack adds the stack
# of __udp4_lib_rcv. A TCP SYN to a closed port is dropped by tcp_v4_rcv
# (the RST that answers it is not selected). Packets are selected by a mark set in netns a (a
# filter expression would double the programs' load time) and followed.
scenario drops_stacks
DROPS='^(ip_output|ip_rcv|__udp4_lib_rcv|tcp_v4_rcv)$'
ip netns exec a iptables -t raw -A OUTPUT -d 10.0.0.2 -j MARK --set-mark $MARK
ip netns exec b iptables -A INPUT -p icmp -s 10.0.0.1 -j DROP
# The three backends side by side, on one round of traffic.
for backend in kprobe ftrace kprobe-multi; do
	output=json
	# The aggregate output's stacks, on one backend.
	[ $backend = ftrace ] && output=aggregate
	launch_ipft drops_$backend -b $backend -o $output -v -r "$DROPS" --stack '^__udp4_lib_rcv$' -m $MARK
done
# (traffic whether or not all are ready: a backend the kernel lacks fails alone)
wait_ready drops_kprobe drops_ftrace drops_kprobe-multi
ip netns exec a ping -c 2 -i 0.3 -W 1 10.0.0.2 > "$OUT/drops.ping" 2>&1
ip netns exec a bash -c 'for i in 1 2; do echo x > /dev/udp/10.0.0.2/9; done'
ip netns exec a timeout 5 bash -c 'echo x > /dev/tcp/10.0.0.2/9' 2> "$OUT/drops.tcp"
nap 0.5
stop_ipft drops_kprobe drops_ftrace drops_kprobe-multi
ip netns exec b iptables -D INPUT -p icmp -s 10.0.0.1 -j DROP
ip netns exec a iptables -t raw -F
