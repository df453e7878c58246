#!/bin/sh
# Like the official image: no config file, so protected mode is off (the compose network is private).
if [ "${1:-}" = redis-server ]; then shift; fi
exec redis-server --protected-mode no "$@"
