#!/bin/sh
# A test agent for the console's browser tests: progress in steps of 10
# every $DELAY seconds, a log line every other step, a result echoing the
# input. Slow enough to watch, cancel and reload in the middle.
read -r input || input=null
delay=${DELAY:-0.3}
i=0
while [ $i -le 100 ]; do
	printf '{"progress": %d, "step": "step-%d", "message": "Working on step %d"}\n' $i $((i / 10)) $((i / 10))
	if [ $((i % 20)) -eq 0 ]; then echo "log line at $i%"; fi
	i=$((i + 10))
	sleep "$delay"
done
printf '{"result": {"ok": true, "input": %s}}\n' "$input"
