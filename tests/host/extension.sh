#!/bin/bash
# Runs on the host as root: extensions (.c, .o, .lua, a filter, a GSO
# decoder written for ipftrace2, broken ones) with the tracepoint backend and
# real marked packets over loopback in a network namespace. Writes outputs
# to $OUT for tests/host.rs.
#   extension.sh OUT IPFT_BINARY
set -u
OUT=$1
IPFT=$2
EXT=$(cd "$(dirname "$0")/../ext" && pwd)
rm -rf "$OUT"
mkdir -p "$OUT"
exec 2> "$OUT/script.log"
set -x
MARK=0xdeadbeef
NS=ipft-test-ext
cleanup() { ip netns del $NS 2>/dev/null; }
cleanup
trap cleanup EXIT
ip netns add $NS
ip -n $NS link set lo up
ip netns exec $NS iptables -t raw -A OUTPUT -d 127.0.0.1 -j MARK --set-mark $MARK

run() {
	local name=$1
	shift
	"$IPFT" -b tracepoint -m $MARK "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
	local pid=$!
	for _ in $(seq 1 300); do
		grep -q "Trace ready!" "$OUT/$name.err" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	eval "$TRAFFIC"
	sleep 0.3
	kill -INT $pid 2>/dev/null
	wait $pid
	echo $? > "$OUT/$name.rc"
}

"$IPFT" --gen bpf-module-skeleton > "$OUT/ext.c"
"$IPFT" --gen bpf-module-header > "$OUT/ipft.h"
# The same skeleton compiled outside ipft, with Debian's headers.
clang -target bpf -O2 -g -I/usr/include/$(gcc -dumpmachine) -c "$OUT/ext.c" -o "$OUT/ext.o" 2> "$OUT/ext.o.log"

TRAFFIC="ip netns exec $NS ping -c 2 -i 0.2 127.0.0.1 >/dev/null"
run skel -e "$OUT/ext.c"
run skel_json -e "$OUT/ext.c" -o json
run object -e "$OUT/ext.o" -o json
IPFT_TEST_OBJECT="$OUT/ext.o" run lua -e "$EXT/len.lua" -o json
IPFT_TEST_OBJECT="$OUT/ext.o" run lua_script -s "$EXT/len.lua"
run filter -e "$EXT/filter.c" -o json
# TCP over loopback: large writes become GSO packets.
TRAFFIC="ip netns exec $NS bash -c 'busybox nc -l -p 5001 > /dev/null & sleep 0.5; head -c 200000 /dev/zero > /dev/tcp/127.0.0.1/5001; wait'"
run gso -e "$EXT/gso.c" -o json
TRAFFIC=true
for broken in syntax_error no_module no_event_struct; do
	run $broken -e "$EXT/$broken.c"
done
run missing -e "$EXT/does_not_exist.c"
echo done > "$OUT/done"
