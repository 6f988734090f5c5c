#!/bin/sh
# Many large events quickly: N progress events of about 16 KiB (N is the
# input, default 400) and a log every 10th, so that a client that never
# reads fills its socket buffers.
read -r n || n=null
[ "$n" = null ] && n=400
pad=$(printf '%16000s' '' | tr ' ' x)
i=1
while [ $i -le "$n" ]; do
	printf '{"progress": %d, "message": "%s"}\n' $((i * 100 / n)) "$pad"
	if [ $((i % 10)) -eq 0 ]; then printf '{"log": "line %d"}\n' $i; fi
	i=$((i + 1))
done
echo '{"result": "chatty done"}'
