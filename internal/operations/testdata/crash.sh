#!/bin/sh
# Dies from a signal nobody sent it (without leaving a core file).
ulimit -c 0
echo '{"progress": 5, "message": "about to crash"}'
kill -SEGV $$
