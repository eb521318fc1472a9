#!/usr/bin/env bash
# Smoke test of the built image (make image-smoke): migrate, then the enrollment web
# tier and its relay from the image, on the host network against the broker at
# KAFKA_BOOTSTRAP_SERVERS and the PostgreSQL at DATABASE_URL; /healthz and /readyz must
# answer 200. Containers are removed on exit, whatever happens.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${DATABASE_URL:?DATABASE_URL (a PostgreSQL server: bash deploy/postgres/pg.sh url)}"
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
PORT=${SMOKE_PORT:-18731}
TAG=smoke$$
IMAGE=localhost/learnstream:latest
# runc, and rlimits within the sandbox's: crun fails on both here.
RUN=(podman --runtime runc run --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network host
     -e "DATABASE_URL=${DATABASE_URL%/*}/$TAG" -e "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS"
     -e "KAFKA_TOPIC_PREFIX=$TAG." -e "LEARNSTREAM_CREDENTIALS=ops:$TAG" -e "PORT=$PORT")
# ... and its topics and database: the broker and the server are shared.
cleanup() {
  podman --runtime runc rm -f "$TAG-web" "$TAG-relay" >/dev/null 2>&1 || true
  SMOKE_DB="${DATABASE_URL%/*}/${TAG}_enrollment" SMOKE_PREFIX="$TAG." .venv/bin/python - <<'PY' || true
import os
import sqlalchemy as sa
from shared import bus
from shared.config import Settings
bus.delete_topics(Settings.from_env("enrollment"), os.environ["SMOKE_PREFIX"])
url = sa.engine.make_url(os.environ["SMOKE_DB"])
engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with engine.connect() as conn:
    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
engine.dispose()
PY
}
trap cleanup EXIT

"${RUN[@]}" --rm "$IMAGE" migrate enrollment
"${RUN[@]}" -d --name "$TAG-web" "$IMAGE" web enrollment >/dev/null
"${RUN[@]}" -d --name "$TAG-relay" "$IMAGE" worker enrollment relay >/dev/null
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 1
done
echo "user: $(podman --runtime runc exec "$TAG-web" id -u)"
curl -sS -w ' %{http_code}\n' "http://127.0.0.1:$PORT/healthz"
curl -sS -w ' %{http_code}\n' "http://127.0.0.1:$PORT/readyz"
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null
podman --runtime runc healthcheck run "$TAG-web" && echo "HEALTHCHECK: healthy"
sleep 3
echo "relay still running: $(podman --runtime runc inspect -f '{{.State.Running}}' "$TAG-relay")"
podman --runtime runc logs "$TAG-relay" 2>&1 | tail -3
