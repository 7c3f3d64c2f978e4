#!/usr/bin/env python3
"""check_schema.py SCHEMA JSON - validates a report against docs/report.schema.json
(JSON Schema 2020-12, Debian's python3-jsonschema); prints every error with its path."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
validator = jsonschema.Draft202012Validator(schema)
errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
for e in errors[:20]:
    print("/".join(str(p) for p in e.absolute_path) or "(root)", ":", e.message)
sys.exit(1 if errors else 0)
