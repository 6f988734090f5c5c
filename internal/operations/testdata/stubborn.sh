#!/bin/sh
# Ignores SIGTERM (its sleep too): only SIGKILL stops it.
trap '' TERM
echo '{"progress": 0, "message": "started"}'
sleep 30
