#!/bin/sh
# 300 progress events as fast as possible, ending at 100, then a result.
i=1
while [ $i -le 300 ]; do
	printf '{"progress": %d}\n' $((i / 3))
	i=$((i + 1))
done
echo '{"result": "burst done"}'
