#!/usr/bin/env python3
"""Validates every JSON line ipft wrote in one e2e run against
schema/ipft.schema.json: each -o json output (*.out whose first line is a
JSON object) line by line, and the summary object of each *.err.
    validate_json.py SCHEMA DIR
Prints "N lines valid in M files" or the first errors, exit 1 on any error."""
import json
import pathlib
import sys

import jsonschema

schema = json.loads(pathlib.Path(sys.argv[1]).read_text())
validator_class = jsonschema.validators.validator_for(schema)
validator_class.check_schema(schema)
lines = validator_class(schema)
summary = validator_class(dict(schema, oneOf=[{"$ref": "#/$defs/summary"}]))
errors, checked, files, summaries = [], 0, 0, 0
for path in sorted(pathlib.Path(sys.argv[2]).glob("*.out")):
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        continue
    if not text.startswith("{"):
        continue
    files += 1
    for n, line in enumerate(text.splitlines(), 1):
        for e in lines.iter_errors(json.loads(line)):
            errors.append(f"{path.name}:{n}: {e.message} in {line[:300]}")
        checked += 1
    err = path.with_suffix(".err")
    if err.exists():
        for line in err.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"events_received"' in line:
                summaries += 1
                for e in summary.iter_errors(json.loads(line)):
                    errors.append(f"{err.name}: summary: {e.message} in {line[:300]}")
for e in errors[:20]:
    print(e)
print(f"{checked} lines valid in {files} files, {summaries} summaries" if not errors
      else f"{len(errors)} errors")
sys.exit(1 if errors else 0)
