#!/usr/bin/env python3
"""Decodes a Perfetto trace written by `ipft -o perfetto` with Perfetto's own
protobuf bindings (PyPI package `perfetto`; scripts/deps.sh installs it) and
prints what it holds as one JSON object on stdout: the clock snapshot, the
sequence's default clock, the tracks, and the slices (begin/end pairs
replayed per track, as a reader does) and instants with their names,
categories and arguments resolved from the interned strings.

Fails (exit 1, reason on stderr) on what a reader would reject: an event on a
track not described before, an end with no open slice, timestamps going
backwards on a track, an interned id never defined.

    perfetto_check.py TRACE > summary.json
"""
import json
import sys

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

BEGIN, END, INSTANT = 1, 2, 3


def fail(msg):
    print(f"perfetto_check: {msg}", file=sys.stderr)
    sys.exit(1)


def main(path):
    trace = pb.Trace()
    with open(path, "rb") as f:
        trace.ParseFromString(f.read())
    snapshot, clock = {}, None
    names, categories, keys = {}, {}, {}
    tracks, stacks, last_ts = {}, {}, {}
    slices, instants = [], []
    for p in trace.packet:
        if p.HasField("clock_snapshot"):
            snapshot = {c.clock_id: c.timestamp for c in p.clock_snapshot.clocks}
        if p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED:
            names, categories, keys = {}, {}, {}
        if p.HasField("trace_packet_defaults"):
            clock = p.trace_packet_defaults.timestamp_clock_id
        for table, entries in (
            (names, p.interned_data.event_names),
            (categories, p.interned_data.event_categories),
            (keys, p.interned_data.debug_annotation_names),
        ):
            for e in entries:
                table[e.iid] = e.name
        if p.HasField("track_descriptor"):
            d = p.track_descriptor
            parent = d.parent_uuid if d.HasField("parent_uuid") else None
            if parent is not None and parent not in tracks:
                fail(f"track {d.name} under undescribed track {parent}")
            tracks[d.uuid] = {"uuid": d.uuid, "name": d.name, "parent": parent}
        if not p.HasField("track_event"):
            continue
        ev = p.track_event
        track = ev.track_uuid
        if track not in tracks:
            fail(f"event on undescribed track {track}")
        if p.timestamp < last_ts.get(track, 0):
            fail(f"time goes backwards on track {tracks[track]['name']}")
        last_ts[track] = p.timestamp
        args = {}
        for a in ev.debug_annotations:
            key = keys[a.name_iid] if a.HasField("name_iid") else a.name
            kind = a.WhichOneof("value")
            args[key] = getattr(a, kind) if kind else None
        stack = stacks.setdefault(track, [])
        if ev.type == END:
            if not stack:
                fail(f"end with no open slice on {tracks[track]['name']}")
            s = stack.pop()
            s["dur"] = p.timestamp - s["ts"]
            s["args"].update(args)
            slices.append(s)
            continue
        name = names[ev.name_iid] if ev.HasField("name_iid") else ev.name
        event = {
            "track": track,
            "name": name,
            "categories": [categories[i] for i in ev.category_iids],
            "ts": p.timestamp,
            "args": args,
        }
        if ev.type == BEGIN:
            event["depth"] = len(stack)
            stack.append(event)
        elif ev.type == INSTANT:
            instants.append(event)
        else:
            fail(f"unexpected event type {ev.type}")
    print(
        json.dumps(
            {
                "snapshot": {str(k): v for k, v in snapshot.items()},
                "clock": clock,
                "tracks": list(tracks.values()),
                "slices": slices,
                "instants": instants,
                "open": [s for st in stacks.values() for s in st],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
