#!/usr/bin/env bash
# Serve SXT LIMS with a Celery worker beside it; Ctrl-C (or the end of either) stops both.
set -euo pipefail
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
CELERY="$(dirname "$PY")/celery"

mkdir -p var
# -B: the worker also runs beat (one per installation), which resends jobs recorded while the broker was down.
"$CELERY" -A config worker -B --schedule var/celerybeat-schedule --loglevel=INFO \
  --concurrency="${WORKER_CONCURRENCY:-2}" --without-gossip --without-mingle &
worker=$!
cleanup() {
  trap - INT TERM EXIT
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
trap cleanup INT TERM EXIT

echo "SXT LIMS at http://$HOST:$PORT/ (worker pid $worker). Ctrl-C stops both."
"$PY" manage.py runserver "$HOST:$PORT"
