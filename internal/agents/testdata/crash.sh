#!/bin/sh
# Dies of SIGSEGV (without leaving a core file behind).
ulimit -c 0
echo '{"progress": 30}'
echo "about to crash" >&2
kill -SEGV $$
