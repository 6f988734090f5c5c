#!/bin/sh
# Ignores SIGTERM (and so does its sleep, which inherits the disposition):
# only SIGKILL stops it.
trap '' TERM
echo '{"progress": 0, "message": "started"}'
sleep 30
echo '{"log": "not reached"}'
