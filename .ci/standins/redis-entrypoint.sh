#!/bin/sh
# Stand-in for the official redis image's entrypoint: runs redis-server as
# `redis` in /data and, without a config file, turns protected mode off so
# other containers on the network can connect.
set -eu
if [ "${1#-}" != "${1:-}" ]; then
  set -- redis-server "$@"
fi

if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis:redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "${1:-}" = redis-server ] && ! [ -f "${2:-}" ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi

exec "$@"
