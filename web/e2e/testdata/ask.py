#!/usr/bin/env python3
"""Asks for input once, then logs the answer it reads on stdin and returns
it as its result (an interactive agent: declare it interactive: true)."""
import json
import sys

sys.stdin.readline()  # the operation's input
print(json.dumps({"input_request": {"id": "approve", "prompt": "Send the email?",
                                    "schema": {"type": "boolean"}}}), flush=True)
answer = sys.stdin.readline()
if not answer:
    print("stdin closed without an answer", flush=True)
    sys.exit(3)
print(json.dumps({"log": "got " + answer.strip()}), flush=True)
print(json.dumps({"result": json.loads(answer)}), flush=True)
