#!/bin/sh
# 2,000 log lines as fast as the shell prints them: beyond any event rate
# a test sets (at 50/s with a burst of 50 they would have to take 39 s not
# to exceed it), however busy the machine.
i=1
while [ $i -le 2000 ]; do
	printf '{"log": "line %d"}\n' $i
	i=$((i + 1))
done
echo '{"result": "flooded"}'
