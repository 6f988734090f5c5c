#!/bin/sh
# "progress" must be a number: this line breaks the protocol.
echo '{"progress": 10}'
echo '{"progress": "fifty"}'
sleep 30
