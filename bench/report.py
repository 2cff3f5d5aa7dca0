"""Formats the benchmark guests' results.jsonl as a table and one JSON file."""
import json
import re
import sys
from pathlib import Path

out, dest = Path(sys.argv[1]), Path(sys.argv[2])
rows = []
for label in ("debian", "custom", "debian-6.12", "debian-rt", "debian-6.12-rt"):
    results = out / label / "results.jsonl"
    if not results.exists():
        continue
    for line in results.read_text().splitlines():
        # bc prints fractions below 1 without their leading zero (".42").
        row = json.loads(re.sub(r":(-?)\.(\d)", r":\g<1>0.\2", line))
        row["guest"] = label
        row["events_per_s"] = round(row["events_received"] / row["flood_s"], 1) if row["flood_s"] else 0
        base = row["baseline_unmarked_pps"]
        row["unmarked_slowdown"] = round(base / row["unmarked_pps_attached"], 2) if row["unmarked_pps_attached"] else None
        estimate = row.get("estimated_detach_s", 0)
        row["estimate_ratio"] = round(estimate / row["detach_s"], 2) if estimate and row["detach_s"] else None
        row["detach_ms_per_func"] = round(1000 * row["detach_s"] / row["functions"], 1) if row["functions"] else None
        for key in ("ready_s", "attach_s", "detach_s", "exit_after_sigint_s", "flood_s"):
            row[key] = round(row[key], 2)
        rows.append(row)

cols = [
    ("guest", "guest"), ("backend", "backend"), ("functions", "funcs"), ("ready_s", "ready s"),
    ("detach_s", "detach s"), ("detach_ms_per_func", "ms/func"),
    ("estimated_detach_s", "est. s"), ("estimate_ratio", "est/real"), ("marked_pps", "marked pps"), ("events_per_s", "events/s"),
    ("events_lost", "lost"), ("baseline_unmarked_pps", "base pps"),
    ("unmarked_pps_attached", "attached pps"), ("unmarked_slowdown", "slowdown"),
    ("peak_rss_kib", "RSS KiB"),
]
table = [[h for _, h in cols]] + [[str(r.get(k)) for k, _ in cols] for r in rows]
widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
for row in table:
    print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
dest.write_text(json.dumps(rows, indent=2) + "\n")
print(f"\nwritten to {dest}")
