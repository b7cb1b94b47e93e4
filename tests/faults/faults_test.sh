#!/usr/bin/env bash
# faults_test.sh BADPEER -- COMMAND [ARGS...]
# Starts the misbehaving peer (tests/faults/badpeer.c), runs COMMAND with
# FAULTS_PORT set to its port, stops the peer and exits with COMMAND's status.
# The peer's stdin is a pipe from this script: if the script dies, the peer
# sees end of file and exits too (and it stops by itself after 120 s).
set -u
peer=$1
shift
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: faults_test.sh BADPEER -- COMMAND [ARGS...]" >&2; exit 2; }

coproc PEER { exec "$peer"; }
peer_pid=$PEER_PID
stop_peer() {
  kill -TERM "$peer_pid" 2>/dev/null
  wait "$peer_pid" 2>/dev/null
}
trap stop_peer EXIT

if ! read -r -t 10 word port <&"${PEER[0]}" || [ "$word" != PORT ]; then
  echo "faults_test.sh: $peer did not print its port" >&2
  exit 1
fi

FAULTS_PORT=$port "$@"
