#!/usr/bin/env bash
# Run a command with an S3 endpoint: the one in AWS_ENDPOINT_URL, else a local MinIO started for it
# (and stopped again afterwards if this script started it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=0
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  if ! curl -fsS -m 2 "http://127.0.0.1:${WIREFEED_MINIO_PORT:-19000}/minio/health/live" >/dev/null 2>&1; then
    "$here/minio.sh" start >/dev/null
    started=1
  fi
  eval "$("$here/minio.sh" env)"
fi
status=0
"$@" || status=$?
if [ "$started" = 1 ]; then "$here/minio.sh" stop; fi
exit "$status"
