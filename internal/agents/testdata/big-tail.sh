#!/bin/sh
# Prints its pid, then 5000 lines as fast as it can, then a result, and exits
# while most of that may still be unread in the pipe.
echo "{\"log\": \"pid $$\"}"
i=1
while [ $i -le 5000 ]; do
	echo "line $i"
	i=$((i + 1))
done
echo '{"result": 5000}'
