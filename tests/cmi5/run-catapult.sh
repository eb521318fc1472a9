#!/usr/bin/env bash
# ADL's cmi5 LMS Test Suite (CATAPULT lts/) against the progress service, which holds the
# cmi5 LMS and the LRS. The suite is checked out and built outside the repo (README, cmi5):
#   tests/cmi5/run-catapult.sh /tmp/catapult/lts [DATABASE_URL]
# Without DATABASE_URL a fresh SQLite file is used. Starts gunicorn (deploy/gunicorn.conf.py, gevent, as
# deployed) on LMS_PORT, runs `npx jest` and stops the server it started.
set -euo pipefail
LTS=${1:?the CATAPULT lts/ folder}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
export DATABASE_URL=${2:-sqlite:///$WORK/lms.sqlite}
export LEARNSTREAM_CREDENTIALS=ops:ops-secret
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
export KAFKA_TOPIC_PREFIX=${KAFKA_TOPIC_PREFIX:-catapult.}
PORT=${LMS_PORT:-8716}
cd "$REPO"
.venv/bin/python -c "import sys; from shared import db; db.ensure_database(sys.argv[1])" "$DATABASE_URL"
CREDENTIAL=$(.venv/bin/learnstream lrs-credentials create --name catapult --scope all \
             | awk '/^key:/{k=$2} /^secret:/{s=$2} END{print k":"s}')
.venv/bin/gunicorn -c deploy/gunicorn.conf.py -k gevent -w 1 --access-logfile "$WORK/access.log" -b "127.0.0.1:$PORT" "services.progress.app:create_app()" \
    > "$WORK/gunicorn.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/xapi/about" >/dev/null && break; sleep 0.2; done
cp tests/cmi5/lms.custom.js "$LTS/lib/lms.custom.js"
cd "$LTS"
LMS_URL="http://127.0.0.1:$PORT" LMS_OPERATOR=ops:ops-secret LMS_LRS_CREDENTIAL="$CREDENTIAL" \
    CATAPULT_LMS="$LTS/lib/lms.custom.js" JEST_PUPPETEER_CONFIG="$REPO/tests/cmi5/jest-puppeteer.config.js" npx jest --runInBand "${@:3}" || status=$?
echo "server logs: $WORK/gunicorn.log $WORK/access.log"
exit "${status:-0}"
