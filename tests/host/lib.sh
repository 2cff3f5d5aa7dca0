# Sourced by the host scenario scripts (needs $IPFT, $OUT and $TRAFFIC).
# run NAME ARGS...: starts ipft ARGS in the background (stdout to
# $OUT/NAME.out, stderr to $OUT/NAME.err), waits for "Trace ready!" (or its
# exit), runs $TRAFFIC, stops it with SIGINT and keeps its status in NAME.rc.
run() {
	local name=$1
	shift
	"$IPFT" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
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
