#!/bin/sh
# Reports what it can see of its environment: one log line per variable
# name, then the values the test checks as the result.
env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/env \1/p' | sort
secret=false
[ -n "${TETHER_JWT_SECRET+set}" ] && secret=true
printf '{"result": {"operation_id": "%s", "agent_id": "%s", "operation_type": "%s", "custom": "%s", "jwt_secret_seen": %s}}\n' \
	"$TETHER_OPERATION_ID" "$TETHER_AGENT_ID" "$TETHER_OPERATION_TYPE" "$CUSTOM" "$secret"
