#!/usr/bin/env python3
"""An AG-UI command agent for the tests: prints what its input says.

The input is {"script": [...]}, or a RunAgentInput whose forwardedProps
is that (as the AG-UI endpoint passes it): each item is printed as one stdout line,
except these directives:
  {"_deltas": {"type": T, "id_field": F, "id": ID, "n": N, "per_sec": R}}
      N delta events of type T (TEXT_MESSAGE_CONTENT by default) for ID,
      the i-th with delta "<i>;" (paced at R a second when given);
  {"_sleep": S}    sleeps S seconds;
  {"_wait": NAME}  waits until the file NAME exists in the directory
                   named by the input's "gate".
  {"_text": S}     prints S as is.
"""
import json
import os
import sys
import time

inp = json.loads(sys.stdin.readline() or "null") or {}
if "runId" in inp:
    inp = inp.get("forwardedProps") or {}
gate = inp.get("gate", "")
out = sys.stdout

for item in inp.get("script", []):
    if "_deltas" in item:
        d = item["_deltas"]
        typ = d.get("type", "TEXT_MESSAGE_CONTENT")
        field = d.get("id_field", "messageId")
        rate = d.get("per_sec")
        begin = time.monotonic()
        for i in range(d["n"]):
            out.write(json.dumps({"type": typ, field: d["id"], "delta": "%d;" % i}, separators=(",", ":")) + "\n")
            if rate and i % 20 == 19:
                out.flush()
                ahead = begin + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        out.flush()
    elif "_sleep" in item:
        time.sleep(item["_sleep"])
    elif "_wait" in item:
        path = os.path.join(gate, item["_wait"])
        while not os.path.exists(path):
            time.sleep(0.01)
    elif "_text" in item:
        out.write(item["_text"] + "\n")
        out.flush()
    else:
        out.write(json.dumps(item) + "\n")
        out.flush()
