#!/bin/sh
# Prints a line of $1 "x" characters, then "after"; with "hold" as $2 it then
# keeps running, so that the test sees the process being stopped.
head -c "$1" /dev/zero | tr '\0' x
echo
echo after
if [ "$2" = hold ]; then
	sleep 30
fi
