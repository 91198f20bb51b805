#!/usr/bin/env bash
# schemathesis against the API's own OpenAPI schema (issue 10), as a lab member would call it.
#
# A fresh SQLite database in a temporary folder gets the demo data (and one reconstructed volume, so the
# volume endpoints have something to answer); the app is served by the dev server on loopback; schemathesis
# reads /api/v1/schema/ and calls every operation with the token of the demo's lab member `bench`, with
# generated valid and invalid input. It fails on any 5xx, any answer that does not match the schema
# (body, content type) and any request that breaks the server. Bounded: SCHEMATHESIS_MAX_EXAMPLES cases per
# operation (default 10), fixed seed, so it takes a few minutes on two cores.
#
#   bash scripts/schemathesis.sh                 # as CI runs it
#   SCHEMATHESIS_MAX_EXAMPLES=50 bash scripts/schemathesis.sh   # a longer hunt
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ST="$(dirname "$PY")/schemathesis"
PORT=${SCHEMATHESIS_PORT:-8021}
EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-10}
SEED=${SCHEMATHESIS_SEED:-1}
PHASES=${SCHEMATHESIS_PHASES:-examples,fuzzing}
REPORT_DIR=${SCHEMATHESIS_REPORT_DIR:-var/schemathesis}

work=$(mktemp -d)
server=""
cleanup() {
  trap - INT TERM EXIT
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup INT TERM EXIT
if "$PY" -c "import socket, sys; sys.exit(socket.socket().connect_ex(('127.0.0.1', $PORT)) != 0)"; then
  echo "schemathesis: port $PORT is taken by another server; set SCHEMATHESIS_PORT to a free one" >&2
  exit 2
fi

export LIMS_VAR_DIR="$work" DATABASE_URL="sqlite:///$work/lims.sqlite3" DEBUG=0 LOG_LEVEL=WARNING
unset CELERY_BROKER_URL  # the embedded broker under $work: nothing reaches a shared one

echo "schemathesis: demo data in $work"
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py load_demo >/dev/null
# One volume, reconstructed in this process, and a token of the lab member the run calls as.
token=$(CELERY_TASK_ALWAYS_EAGER=1 "$PY" manage.py shell --no-imports -v 0 -c '
from django.contrib.auth import get_user_model
from lims.tokens import api_token_create
from reconstruction import services
from reconstruction.models import Dataset, DatasetStatus
bench = get_user_model().objects.get(username="bench")
dataset = Dataset.objects.filter(status=DatasetStatus.PENDING).order_by("pk").first()
if dataset is not None:
    services.dataset_decide(dataset=dataset, accept=True, by=bench)
print(api_token_create(user=bench, name="schemathesis")[1])
' | tail -n 1)

"$PY" manage.py runserver --noreload --skip-checks "127.0.0.1:$PORT" >"$work/server.log" 2>&1 &
server=$!

mkdir -p "$REPORT_DIR"
status=0
"$ST" run "http://127.0.0.1:$PORT/api/v1/schema/?format=json" \
  --wait-for-schema 120 \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --phases "$PHASES" --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 \
  --request-timeout 60 --generation-database none \
  --report junit --report-dir "$REPORT_DIR" || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed ($status); server errors, if any:"
  grep -A 30 -E "^(Internal Server Error|Traceback)" "$work/server.log" | tail -n 80 || true
fi
exit "$status"
