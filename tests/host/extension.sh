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

. "$(dirname "$0")/lib.sh"

"$IPFT" --gen bpf-module-skeleton > "$OUT/ext.c"
"$IPFT" --gen bpf-module-header > "$OUT/ipft.h"
# The same skeleton compiled outside ipft, with Debian's headers.
clang -target bpf -O2 -g -I/usr/include/$(gcc -dumpmachine) -c "$OUT/ext.c" -o "$OUT/ext.o" 2> "$OUT/ext.o.log"

TRAFFIC="ip netns exec $NS ping -c 2 -i 0.2 127.0.0.1 >/dev/null"
run skel -b tracepoint -m $MARK -e "$OUT/ext.c"
run skel_json -b tracepoint -m $MARK -e "$OUT/ext.c" -o json
run object -b tracepoint -m $MARK -e "$OUT/ext.o" -o json
IPFT_TEST_OBJECT="$OUT/ext.o" run lua -b tracepoint -m $MARK -e "$EXT/len.lua" -o json
IPFT_TEST_OBJECT="$OUT/ext.o" run lua_script -b tracepoint -m $MARK -s "$EXT/len.lua"
run filter -b tracepoint -m $MARK -e "$EXT/filter.c" -o json
# TCP over loopback: large writes become GSO packets.
TRAFFIC="ip netns exec $NS bash -c 'busybox nc -l -p 5001 > /dev/null & sleep 0.5; head -c 200000 /dev/zero > /dev/tcp/127.0.0.1/5001; wait'"
run gso -b tracepoint -m $MARK -e "$EXT/gso.c" -o json
TRAFFIC=true
for broken in syntax_error no_module no_event_struct; do
	run $broken -b tracepoint -m $MARK -e "$EXT/$broken.c"
done
run missing -b tracepoint -m $MARK -e "$EXT/does_not_exist.c"
echo done > "$OUT/done"
