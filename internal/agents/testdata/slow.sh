#!/bin/sh
# Runs until stopped; handles SIGTERM by logging and exiting 143.
trap 'echo "{\"log\": \"got TERM\"}"; exit 143' TERM
# "started" comes from the background child itself, so by the time a test
# reacts to it the child exists and a SIGTERM to the group reaches it.
(echo '{"progress": 0, "message": "started"}'; exec sleep 30) &
wait $!
echo '{"log": "not reached"}'
