# Sourced by the guest scripts (tests/e2e/guest.sh, bench/guest.sh): mounts
# what ipft needs and builds the test network.
# Topology: netns a (10.0.0.1, 10.0.1.1) <-veth-> netns b (10.0.0.2, 10.0.1.2).
# 10.0.0.0/24 carries traffic marked $MARK, 10.0.1.0/24 unmarked traffic.
MARK=0xdeadbeef
mountpoint -q /sys/kernel/tracing || mount -t tracefs none /sys/kernel/tracing
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
ip netns add a
ip netns add b
ip link add va netns a type veth peer name vb netns b
ip link add ua netns a type veth peer name ub netns b
ip -n a addr add 10.0.0.1/24 dev va
ip -n b addr add 10.0.0.2/24 dev vb
ip -n a addr add 10.0.1.1/24 dev ua
ip -n b addr add 10.0.1.2/24 dev ub
for l in va ua lo; do ip -n a link set $l up; done
for l in vb ub lo; do ip -n b link set $l up; done
# The mark is cleared when a packet crosses namespaces: mark again on entry.
# (topology_marks -A adds these rules, -D removes them)
topology_marks() {
	ip netns exec a iptables -t raw "$1" OUTPUT -d 10.0.0.2 -j MARK --set-mark $MARK
	ip netns exec a iptables -t raw "$1" PREROUTING -s 10.0.0.2 -j MARK --set-mark $MARK
	ip netns exec b iptables -t raw "$1" PREROUTING -s 10.0.0.1 -j MARK --set-mark $MARK
	ip netns exec b iptables -t raw "$1" OUTPUT -d 10.0.0.1 -j MARK --set-mark $MARK
}
topology_marks -A
# warm up ARP so every run sees the same path
ip netns exec a ping -c 1 -W 2 10.0.0.2 >/dev/null
ip netns exec a ping -c 1 -W 2 10.0.1.2 >/dev/null
