#!/bin/sh
# Example Tether command agent. It "summarizes" its input by counting bytes
# and words, reporting progress as it goes.
#
# Protocol (see README.md): the operation's input arrives on stdin as one line
# of JSON; every stdout line that is a JSON object is an event; any other line
# is a log line; exit 0 completes the operation, anything else fails it.
#
# DELAY sets the pause between steps in seconds (default 1). Tether passes
# no variables from its own environment except PATH, HOME, LANG, LC_ALL, TZ
# and TMPDIR, so set DELAY under `env:` in tether.yaml.
set -eu

DELAY=${DELAY:-1}
input=$(cat)

# step PROGRESS STEP MESSAGE prints one progress event.
step() {
	printf '{"progress": %s, "step": "%s", "message": "%s"}\n' "$1" "$2" "$3"
}

step 0 read "Reading input"
bytes=$(printf '%s' "$input" | wc -c | tr -d ' ')
sleep "$DELAY"

step 25 count "Counting words"
words=$(printf '%s' "$input" | wc -w | tr -d ' ')
sleep "$DELAY"

echo "counted $words words in $bytes bytes of input"
step 50 analyze "Analyzing"
sleep "$DELAY"

step 75 summarize "Writing the summary"
sleep "$DELAY"

step 100 done "Done"
printf '{"result": {"operation_id": "%s", "bytes": %s, "words": %s}}\n' \
	"${TETHER_OPERATION_ID:-none}" "$bytes" "$words"
