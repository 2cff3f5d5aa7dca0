"""Sums up a tracked flood (ipft -o json on stdin) for tests/e2e/select.rs:
how many packet ids, skb addresses, and how many ids hold more than one
receive (icmp_rcv), which would mean two packets under one id; and the
verdicts given, per kind."""
import json
import sys

ids = {}
skbs = set()
verdicts = {}
for line in sys.stdin:
    e = json.loads(line)
    if "verdict" in e:
        kind = e["verdict"]["kind"]
        verdicts[kind] = verdicts.get(kind, 0) + 1
        continue
    skbs.add(e["skb"])
    rcv = ids.setdefault(e["packet_id"], [0, 0])
    rcv[0] += 1
    if e["function"] == "icmp_rcv":
        rcv[1] += 1
print(json.dumps({
    "events": sum(v[0] for v in ids.values()),
    "ids": len(ids),
    "skbs": len(skbs),
    "ids_with_one_receive": sum(1 for v in ids.values() if v[1] == 1),
    "ids_with_several_receives": sum(1 for v in ids.values() if v[1] > 1),
    "verdicts": verdicts,
}))
