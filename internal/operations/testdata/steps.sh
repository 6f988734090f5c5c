#!/bin/sh
# A well-behaved agent with a fixed event sequence: progress, log, two
# progress, result. Tests assert the exact order and seqs.
read -r input || input=null
echo '{"progress": 10, "step": "fetch", "message": "Fetching"}'
echo "input was $input"
echo '{"progress": 60, "step": "work", "message": "Working", "data": {"items": 3}}'
echo '{"progress": 100, "step": "done", "message": "Done"}'
printf '{"result": {"ok": true, "input": %s}}\n' "$input"
