#!/bin/sh
# Leaves a background sleep behind and exits 0. Without "detached" the sleep
# holds stdout open; with it, it holds nothing.
if [ "$1" = detached ]; then
	sleep 30 >/dev/null 2>&1 &
else
	sleep 30 &
fi
echo "{\"log\": \"bg $!\"}"
echo '{"result": "done"}'
