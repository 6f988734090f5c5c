#!/bin/sh
# Runs until stopped; on SIGTERM logs and exits 143.
trap 'echo "{\"log\": \"got TERM\"}"; exit 143' TERM
(echo '{"progress": 0, "message": "started"}'; exec sleep 30) &
wait $!
echo '{"log": "not reached"}'
