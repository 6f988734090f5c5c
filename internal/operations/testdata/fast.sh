#!/bin/sh
echo '{"progress": 50, "message": "half"}'
echo '{"result": 1}'
