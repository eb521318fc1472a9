#!/bin/sh
# The image's one entry point: the command chooses what this container runs.
#
#   web <service>                         the service's gunicorn web tier on 0.0.0.0:$PORT (default 8000)
#   worker <service> relay|projections    one worker part (one process per container: the
#                                         orchestrator restarts it, not learnstream's runner)
#   migrate [service...]                  create the databases and apply every migration (once, before the rest)
#   topics [service...]                   create the Kafka topics (replication/min ISR from the env)
#   learnstream ...                       any other CLI command
set -eu

services="enrollment progress assessment certification"
usage() {
  echo "usage: web <service> | worker <service> relay|projections | migrate [service...] | topics [service...]" >&2
  echo "  services: $services" >&2
  exit 64
}
known() { for s in $services; do [ "$s" = "$1" ] && return 0; done; return 1; }

[ $# -ge 1 ] || usage
cmd=$1; shift
case $cmd in
  web)
    [ $# -eq 1 ] && known "$1" || usage
    # The Python default of each service's worker class (progress: gevent), as make run uses.
    class=${GUNICORN_WORKER_CLASS:-$(python -c "from shared.service import load; print(load('$1').web_worker_class)")}
    # Prometheus multiprocess mode: /metrics sums every gunicorn worker of this container.
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}"
    rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    exec python -m gunicorn -c /app/deploy/gunicorn.conf.py -b "0.0.0.0:${PORT:-8000}" \
      --worker-class "$class" --name "learnstream-$1" "services.$1.app:create_app()"
    ;;
  worker)
    [ $# -eq 2 ] && known "$1" || usage
    case $2 in relay|projections) ;; *) usage ;; esac
    exec python -m shared.cli worker "$1" --only "$2"
    ;;
  migrate|topics)
    exec python -m shared.cli "$cmd" "$@"
    ;;
  learnstream)
    exec python -m shared.cli "$@"
    ;;
  *)
    usage
    ;;
esac
