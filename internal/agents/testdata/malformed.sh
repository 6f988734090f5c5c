#!/bin/sh
# Prints one good event, then the bad line chosen by $1, then keeps running
# so that the test sees the process being stopped.
echo '{"progress": 5, "message": "ok so far"}'
case "$1" in
string) echo '{"progress": "abc"}' ;;
range) echo '{"progress": 150}' ;;
message) echo '{"message": 42, "progress": 7}' ;;
esac
echo '{"progress": 90, "message": "must not be emitted"}'
sleep 30
