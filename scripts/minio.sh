#!/usr/bin/env bash
# Build (once per machine), start, stop MinIO on 127.0.0.1 for wirefeed's tests and local runs.
# MinIO's community edition ships as source only, so it is built with `go install` at a pinned version.
set -euo pipefail

# RELEASE.2025-10-15T17-29-55Z (commit 9e49d5e7a648) is refused by the Go module proxy reachable here
# (403 "not available"); this is the nearest version that resolves: the final commit of the archived repo.
MINIO_VERSION="${WIREFEED_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
CACHE="${WIREFEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wirefeed}"
BIN_DIR="$CACHE/minio-${MINIO_VERSION##*-}"
MINIO_BIN="$BIN_DIR/minio"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${WIREFEED_MINIO_STATE:-$ROOT/.minio}"
PORT="${WIREFEED_MINIO_PORT:-19000}"
USER_="${WIREFEED_MINIO_USER:-wirefeed}"
PASS_="${WIREFEED_MINIO_PASSWORD:-wirefeed-local-secret}"
ENDPOINT="http://127.0.0.1:$PORT"

log() { echo "minio.sh: $*" >&2; }

build() {
  [ -x "$MINIO_BIN" ] && return 0
  if ! command -v go >/dev/null 2>&1; then
    log "Go is required to build MinIO from source (go install github.com/minio/minio@$MINIO_VERSION)."
    log "Install Go >= 1.24, or point AWS_ENDPOINT_URL at another S3-compatible endpoint."
    exit 3
  fi
  log "building MinIO $MINIO_VERSION into $BIN_DIR (once per machine, a few minutes)"
  mkdir -p "$BIN_DIR"
  (cd /tmp && GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION")
}

live() { curl -fsS -m 2 "$ENDPOINT/minio/health/live" >/dev/null 2>&1; }

print_env() {
  cat <<ENV
export AWS_ENDPOINT_URL=$ENDPOINT
export AWS_ACCESS_KEY_ID=$USER_
export AWS_SECRET_ACCESS_KEY=$PASS_
export AWS_DEFAULT_REGION=us-east-1
ENV
}

start() {
  build
  if live; then log "already running at $ENDPOINT"; print_env; return 0; fi
  mkdir -p "$STATE/data"
  MINIO_ROOT_USER="$USER_" MINIO_ROOT_PASSWORD="$PASS_" MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
    nohup "$MINIO_BIN" server --quiet --address "127.0.0.1:$PORT" "$STATE/data" >"$STATE/minio.log" 2>&1 &
  echo $! >"$STATE/minio.pid"
  for _ in $(seq 1 120); do
    if live; then log "MinIO live at $ENDPOINT (pid $(cat "$STATE/minio.pid"), log $STATE/minio.log)"; print_env; return 0; fi
    if ! kill -0 "$(cat "$STATE/minio.pid")" 2>/dev/null; then log "MinIO exited; see $STATE/minio.log"; tail -20 "$STATE/minio.log" >&2; exit 1; fi
    sleep 0.5
  done
  log "MinIO did not become live within 60s"; exit 1
}

stop() {
  if [ -f "$STATE/minio.pid" ]; then
    pid="$(cat "$STATE/minio.pid")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      log "stopped pid $pid"
    fi
    rm -f "$STATE/minio.pid"
  else
    log "no PID file at $STATE/minio.pid"
  fi
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  bin) build >&2; echo "$MINIO_BIN" ;;
  *) echo "usage: $0 build|start|stop|env|bin" >&2; exit 2 ;;
esac
