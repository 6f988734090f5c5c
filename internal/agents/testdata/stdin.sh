#!/bin/sh
# Echoes its input back as the result.
input=$(cat)
printf '{"result": %s}\n' "$input"
