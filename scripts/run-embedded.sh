#!/usr/bin/env bash
# `make run`: run the real wire_daily Airflow DAG once (`airflow dags test`) on the bundled sample feeds
# (config/samples.yaml, local files only: offline) and print the run summary from the landed manifest.
#
#   LAKE   lake URI (default ./lake); s3://bucket/prefix uses AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID /
#          AWS_SECRET_ACCESS_KEY (e.g. `eval "$(scripts/minio.sh env)"`), handed to Airflow as the
#          connection wirefeed_s3 (AIRFLOW_CONN_WIREFEED_S3).
#   DATE   UTC day D to land, interval [D, D+1) (default 2026-11-20, the day the samples are dated).
#          A manual run's data interval is the complete day before its logical date, so this runs
#          `airflow dags test wire_daily D+1`.
#   FEEDS  feeds file (default config/samples.yaml).
# Airflow state (SQLite metadata DB, logs) lives in $AIRFLOW_HOME (default ./.airflow, git-ignored).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BIN="${BIN:-$ROOT/.venv/bin}"
LAKE="${LAKE:-./lake}"
DATE="${DATE:-2026-11-20}"
FEEDS="${FEEDS:-config/samples.yaml}"

abspath() { case "$1" in s3://* | /*) echo "$1" ;; *) echo "$ROOT/${1#./}" ;; esac; }

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
if [[ "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" == sqlite* ]]; then
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS:-pipeline.jobs.airflow_support.SQLITE_CONNECT_ARGS}"
fi
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}"
export WIREFEED_LAKE="$(abspath "$LAKE")"
export WIREFEED_FEEDS="$(abspath "$FEEDS")"
mkdir -p "$AIRFLOW_HOME"

if [[ "$WIREFEED_LAKE" == s3://* ]]; then
  : "${AWS_ENDPOINT_URL:?LAKE=$LAKE needs AWS_ENDPOINT_URL etc.; try: eval \"\$(scripts/minio.sh env)\"}"
  AIRFLOW_CONN_WIREFEED_S3="$("$BIN/python" -c '
import json, os
print(json.dumps({"conn_type": "aws", "login": os.environ.get("AWS_ACCESS_KEY_ID"),
    "password": os.environ.get("AWS_SECRET_ACCESS_KEY"),
    "extra": {"endpoint_url": os.environ["AWS_ENDPOINT_URL"],
              "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}}))')"
  export AIRFLOW_CONN_WIREFEED_S3
fi

next_day="$("$BIN/python" -c 'import sys, datetime as d; print(d.date.fromisoformat(sys.argv[1]) + d.timedelta(days=1))' "$DATE")"
log="$AIRFLOW_HOME/run-embedded-$DATE.log"

echo "== airflow db migrate ($AIRFLOW_HOME)"
"$BIN/airflow" db migrate >"$log" 2>&1 || { tail -30 "$log"; exit 1; }
"$BIN/airflow" pools set wirefeed_fetch 4 "wirefeed feed fetching" >>"$log" 2>&1
"$BIN/airflow" pools set wirefeed_s3 1 "wirefeed lake writes (one at a time)" >>"$log" 2>&1

echo "== airflow dags test wire_daily $next_day  (data interval [$DATE, $next_day) UTC)"
echo "   feeds $WIREFEED_FEEDS -> lake $WIREFEED_LAKE  (log $log)"
if ! "$BIN/airflow" dags test wire_daily "$next_day" >>"$log" 2>&1; then
  echo "wire_daily run FAILED; last lines of $log:" >&2
  grep -E "ERROR|Error|error|FAILED|failed" "$log" | tail -20 >&2 || true
  tail -20 "$log" >&2
  exit 1
fi

"$BIN/python" - "$DATE" <<'PY'
import sys

from pipeline.config import Settings
from pipeline.lake.store import open_lake
from pipeline.lake.landing import manifest_key, read_manifest
from pipeline.lake.validate import validate

day = sys.argv[1]
settings = Settings.load()
lake = open_lake(settings.lake, settings)
m = read_manifest(lake, manifest_key("daily", day))
print(f"== wire_daily {m.label}: interval [{m.interval_start}, {m.interval_end})  run {m.run_id}")
for f in m.feeds:
    print(f"   feed {f.get('feed_id')}: {f.get('status')} stories={f.get('stories')} rejected={f.get('rejected')}"
          + (f" ({f.get('reason')})" if f.get("reason") else ""))
print("   counts " + " ".join(f"{k}={v}" for k, v in m.counts.items()))
if m.topics:
    print("   topics " + ", ".join(f"{k}={v}" for k, v in sorted(m.topics.items())))
report = validate(lake, day, day)
print(f"   validate ok={report.ok} manifests={report.manifests} objects={report.objects} rows={report.rows}")
print(f"== manifest {lake.uri(m.key)}")
print("== Parquet files:")
for o in m.objects:
    print(f"   {lake.uri(o['key'])}  rows={o['rows']} size={o['size']}")
PY
