#!/bin/sh
# A well-behaved agent. The blank line must be ignored and the CRLF line
# read as "halfway".
echo '{"progress": 10, "step": "step1", "message": "starting"}'
echo '{"progress": 50}'
echo
printf 'halfway\r\n'
echo '{"progress": 100, "step": "done"}'
echo '{"result": {"ok": true, "n": 3}}'
