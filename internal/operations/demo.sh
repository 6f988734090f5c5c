#!/bin/sh
# Tether's built-in demo agent (--dev with no agents configured): a few
# progress steps with short pauses, a log line, and a result echoing the
# input. It speaks the command-agent stdout protocol of docs/agents.md.
read -r input || input=null
step() {
	printf '{"progress": %s, "step": "%s", "message": "%s"}\n' "$1" "$2" "$3"
	sleep 0.4
}
step 0 start "Starting"
step 25 plan "Planning"
echo "demo agent got input: $input"
step 50 work "Working"
step 75 check "Checking"
printf '{"progress": 100, "step": "done", "message": "Done"}\n'
printf '{"result": {"operation_id": "%s", "input": %s}}\n' "$TETHER_OPERATION_ID" "${input:-null}"
