#!/bin/bash
# Runs on the host as root: the tracepoint backend against real marked
# packets in network namespaces (the host kernel allows only tracepoint BPF
# programs). Writes outputs to $OUT for tests/host.rs to check.
#   tracepoint.sh OUT IPFT_BINARY
set -u
OUT=$1
IPFT=$2
rm -rf "$OUT"
mkdir -p "$OUT"
exec 2> "$OUT/script.log"
set -x
MARK=0xdeadbeef
A=ipft-test-a
B=ipft-test-b
cleanup() {
	ip netns del $A 2>/dev/null
	ip netns del $B 2>/dev/null
}
cleanup
trap cleanup EXIT
ip netns add $A
ip netns add $B
ip link add va netns $A type veth peer name vb netns $B
ip -n $A addr add 10.99.0.1/24 dev va
ip -n $B addr add 10.99.0.2/24 dev vb
for l in va lo; do ip -n $A link set $l up; done
for l in vb lo; do ip -n $B link set $l up; done
ip netns exec $A iptables -t raw -A OUTPUT -d 10.99.0.2 -j MARK --set-mark $MARK
ip netns exec $A iptables -t raw -A PREROUTING -s 10.99.0.2 -j MARK --set-mark $MARK
ip netns exec $B iptables -t raw -A PREROUTING -s 10.99.0.1 -j MARK --set-mark $MARK
ip netns exec $B iptables -t raw -A OUTPUT -d 10.99.0.1 -j MARK --set-mark $MARK
ip netns exec $A iptables -t raw -A OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK
ip netns exec $A ping -c 1 -W 2 10.99.0.2 >/dev/null

. "$(dirname "$0")/lib.sh"

TRAFFIC="ip netns exec $A ping -c 3 -i 0.2 10.99.0.2 >/dev/null"
run veth -b tracepoint -m $MARK -o json
run veth_agg -b tracepoint -m $MARK
TRAFFIC="ip netns exec $A ping -c 3 -i 0.2 127.0.0.1 >/dev/null"
run loopback -b tracepoint -m $MARK -o json
ip netns exec $B iptables -A INPUT -p icmp -s 10.99.0.1 -j DROP
TRAFFIC="ip netns exec $A ping -c 2 -i 0.2 -W 1 10.99.0.2 >/dev/null"
run drop -m $MARK -o json -v
echo done > "$OUT/done"
