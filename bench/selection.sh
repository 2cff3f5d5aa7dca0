#!/bin/bash
# Benchmark of packet selection (issue: "select any packet without marking
# it"): how much time ipft adds to each packet it does NOT select, when it
# selects by mark and when it selects by a pcap-filter expression, every skb
# function attached. Boots the custom 6.1 kernel (kprobe-multi) and Debian
# 6.1 (kprobe); in each boot no-ipft, mark and expression runs alternate.
# Prints the added time per packet (1/pps with ipft - 1/pps without) and the
# ratio expression/mark; with BASE=git revision, the same for that build
# (built beside this one) in the same boot. Run as root:
#   bash bench/selection.sh [COUNT] [ROUNDS]
# (GUESTS="custom" or "debian" for one of them).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5000}
ROUNDS=${2:-3}
cargo build --release
OUT=target/bench-selection
rm -rf "$OUT"
. bench/lib.sh
build_base
debian=$(newest 'vmlinuz-6\.1\.0-[0-9]+-amd64')
GUESTS=${GUESTS:-custom debian}
for run in "custom:kprobe-multi:../shared/kernels/vmlinuz-6.1-ipft" "debian:kprobe:$debian"; do
	label=${run%%:*}
	case " $GUESTS " in *" $label "*) ;; *) continue ;; esac
	rest=${run#*:}
	backend=${rest%%:*}
	image=${rest#*:}
	mkdir -p "$OUT/$label"
	run_guest "$OUT/$label" "$image" \
		"bash $PWD/bench/selection_guest.sh $PWD/$OUT/$label $PWD/target/release/ipft $backend $COUNT $ROUNDS $base_bin"
done
python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path
print(f"{'guest':>7} {'backend':>13} {'build':>5} {'round':>5} {'base pps':>9} {'mark pps':>9} {'expr pps':>9} {'mark +us':>9} {'expr +us':>9} {'expr/mark':>9} {'mark ns':>8} {'expr ns':>8}")
for label in ("custom", "debian"):
    results = Path(sys.argv[1]) / label / "selection.jsonl"
    if not results.exists():
        continue
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    pooled = {}
    for r in rows:
        add = lambda pps: 1e6 / pps - 1e6 / r["baseline_pps"]
        for build, prefix in (("this", ""), ("base", "base_")):
            if prefix + "mark_pps" not in r:
                continue
            mark, expr = r[prefix + "mark_pps"], r[prefix + "expression_pps"]
            m, e = add(mark), add(expr)
            mns, ens = r.get(prefix + "mark_ns", 0), r.get(prefix + "expression_ns", 0)
            p = pooled.setdefault(build, [0, 0, 0, 0])
            p[0] += m; p[1] += e; p[2] += mns; p[3] += ens
            print(f"{label:>7} {r['backend']:>13} {build:>5} {r['round']:>5} {r['baseline_pps']:>9.0f} {mark:>9.0f} {expr:>9.0f} {m:>9.1f} {e:>9.1f} {e / m:>9.2f} {mns:>8.0f} {ens:>8.0f}")
    # Over all rounds: the added times summed (a round's ratio moves with
    # the machine), and the programs' own time per call.
    for build, (m, e, mns, ens) in pooled.items():
        n = len(rows)
        ns = f", programs {mns / n:.0f} ns per call with the mark, {ens / n:.0f} with the expression" if mns else ""
        print(f"{label:>7} {build:>5} pooled over {n} rounds: mark +{m / n:.1f} us, expression +{e / n:.1f} us per packet, ratio {e / m:.2f}{ns}")
PY
