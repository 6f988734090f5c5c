#!/bin/sh
# Moves on only when the test creates files in the directory named by its
# input (a JSON string), so tests control exactly when each event happens.
read -r input
dir=$(printf '%s' "$input" | tr -d '"')
wait_for() { while [ ! -e "$dir/$1" ]; do sleep 0.02; done; }
echo '{"progress": 10, "step": "one", "message": "waiting for go1"}'
wait_for go1
echo '{"log": "got go1"}'
echo '{"progress": 50, "step": "two", "message": "waiting for go2"}'
wait_for go2
echo '{"progress": 100, "step": "done"}'
echo '{"result": "gated done"}'
