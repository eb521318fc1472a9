#!/usr/bin/env bash
# A learnstream cluster of simulated hosts on this machine, one Linux network namespace
# per host, all on a bridge of our own (ls-br0, 10.77.0.0/24, nothing else on it):
#
#   ls-k1 ls-k2 ls-k3   10.77.0.11-13  Kafka brokers, KRaft (broker + controller each)
#   ls-pg               10.77.0.20     PostgreSQL (every service's database)
#   ls-app1 ls-app2     10.77.0.31-32  every service's web tier and every worker part
#                                      (`learnstream run`, web tiers on 0.0.0.0:8001-8004)
#   ls-load             10.77.0.40     the load generator's host (nothing runs there by itself)
#   the bridge itself   10.77.0.1      so tools on this machine (pytest, the benchmark) reach every host
#
# usage: deploy/cluster/cluster.sh up|down|status|env
#        deploy/cluster/cluster.sh kill-broker N | start-broker N      (N = 1..3; kill -9 by recorded PID)
#        deploy/cluster/cluster.sh stop-app N | start-app N            (SIGTERM to app host N's runner)
#        deploy/cluster/cluster.sh link-down HOST | link-up HOST       (HOST = k1..k3, pg, app1, app2, load)
#        deploy/cluster/cluster.sh block-kafka HOST | unblock-kafka HOST  (routes to the brokers unreachable)
#
# Topics get replication factor 3 and min.insync.replicas 2 from the configuration
# (KAFKA_TOPIC_REPLICATION_FACTOR, KAFKA_TOPIC_MIN_INSYNC_REPLICAS), as a deployment sets them.
# Every process started is recorded in var/cluster/pids/ and stopped by that PID only;
# `down` also checks each namespace is empty (`ip netns pids`) before deleting it, and
# removes the bridge, the veths (they go with their namespaces) and var/cluster/.
#
# environment: CLUSTER_WEB_CONCURRENCY (gunicorn workers per web tier, default 1: two
# app hosts share this machine's cores), CLUSTER_KAFKA_HEAP (default -Xmx512m -Xms128m).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
STATE="$REPO_ROOT/var/cluster"
PIDS="$STATE/pids"
LIBS_DIR="$REPO_ROOT/var/kafka/libs"
VENV_BIN="$REPO_ROOT/.venv/bin"

BRIDGE=ls-br0
NET=10.77.0
HOSTS=(k1 k2 k3 pg app1 app2 load)
declare -A ADDR=([k1]=$NET.11 [k2]=$NET.12 [k3]=$NET.13 [pg]=$NET.20 [app1]=$NET.31 [app2]=$NET.32 [load]=$NET.40)
BOOTSTRAP="$NET.11:9092,$NET.12:9092,$NET.13:9092"
PG_URL="postgresql+psycopg://learnstream:learnstream@$NET.20:5432/learnstream"
WEB_CONCURRENCY="${CLUSTER_WEB_CONCURRENCY:-1}"
KAFKA_HEAP="${CLUSTER_KAFKA_HEAP:--Xmx512m -Xms128m}"

die() { echo "cluster.sh: $*" >&2; exit 1; }
note() { echo "cluster.sh: $*" >&2; }
ns() { echo "ls-$1"; }
in_ns() { local host=$1; shift; ip netns exec "$(ns "$host")" "$@"; }

valid_host() {
  local h
  for h in "${HOSTS[@]}"; do [[ $h == "$1" ]] && return 0; done
  die "unknown host '$1' (hosts: ${HOSTS[*]})"
}
valid_broker() { [[ ${1:-} =~ ^[1-3]$ ]] || die "broker number must be 1, 2 or 3, not '${1:-}'"; }
valid_app() { [[ ${1:-} =~ ^[1-2]$ ]] || die "app host number must be 1 or 2, not '${1:-}'"; }

need() {
  [[ $(id -u) -eq 0 ]] || die "network namespaces need root"
  command -v ip >/dev/null || die "ip (iproute2) not found: bash deploy/system-deps.sh --cluster"
  command -v java >/dev/null || die "java not found: bash deploy/system-deps.sh"
  [[ -x $VENV_BIN/learnstream ]] || die "no virtualenv: make venv"
}

alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# pid of a recorded process if it still runs and is still the one we started
# (its command line contains the marker we recorded with it: guards against PID reuse)
recorded_pid() {
  local name=$1 pid marker
  [[ -f $PIDS/$name ]] || return 1
  read -r pid marker <"$PIDS/$name" || true
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  grep -qaF -- "$marker" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# stop_pid NAME SIGNAL: signal the recorded process, wait up to 30 s, then SIGKILL
stop_recorded() {
  local name=$1 sig=${2:-TERM} pid i
  if pid="$(recorded_pid "$name")"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      note "$name (pid $pid) did not stop within 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
    note "stopped $name (pid $pid)"
  fi
  rm -f "$PIDS/$name"
}

wait_port() { # HOST PORT SECONDS WHAT
  local deadline=$((SECONDS + $3))
  until timeout 2 bash -c "exec 3<>/dev/tcp/${ADDR[$1]}/$2" 2>/dev/null; do
    ((SECONDS < deadline)) || die "$4 did not listen on ${ADDR[$1]}:$2 within $3 s"
    sleep 0.5
  done
}

# ------------------------------------------------------------------ network
net_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "$BRIDGE exists already: a cluster is up (cluster.sh down first)"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local h
  for h in "${HOSTS[@]}"; do
    ip netns add "$(ns "$h")"
    ip link add "lsv-$h" type veth peer name eth0 netns "$(ns "$h")"
    ip link set "lsv-$h" master "$BRIDGE" up
    in_ns "$h" ip link set lo up
    in_ns "$h" ip addr add "${ADDR[$h]}/24" dev eth0
    in_ns "$h" ip link set eth0 up
  done
}

net_down() {
  local h pid
  for h in "${HOSTS[@]}"; do
    ip netns list | grep -qw "$(ns "$h")" || continue
    # Anything still running in the namespace was started by this script (nothing else
    # runs there): its PIDs, from the kernel, one by one.
    for pid in $(ip netns pids "$(ns "$h")" 2>/dev/null); do
      note "process $pid still in $(ns "$h"): SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$(ns "$h")"   # its eth0 goes with it, and so does the veth's other end
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  return 0
}

# ------------------------------------------------------------------ kafka
broker_props() { # N
  local n=$1 dir
  dir="$STATE/k$n"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
# generated by deploy/cluster/cluster.sh: broker $n of 3 (KRaft, broker + controller)
process.roles=broker,controller
node.id=$n
controller.quorum.voters=1@$NET.11:9093,2@$NET.12:9093,3@$NET.13:9093
listeners=PLAINTEXT://${ADDR[k$n]}:9092,CONTROLLER://${ADDR[k$n]}:9093
advertised.listeners=PLAINTEXT://${ADDR[k$n]}:9092
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
# Three replicas of everything, two of them in sync before an acks=all write is acknowledged.
offsets.topic.replication.factor=3
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
default.replication.factor=3
min.insync.replicas=2
num.partitions=6
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
# A broker killed with -9 can register again 4 s later (not 9), and a follower that
# stops fetching leaves the ISR after 10 s (the default 30 s would keep acks=all
# writes waiting on a dead replica that long).
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
replica.lag.time.max.ms=10000
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
EOF
  cat >"$dir/log4j2.properties" <<'EOF'
status = warn
name = learnstream-cluster-kafka
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

broker_start() { # N
  local n=$1 pid dir
  dir="$STATE/k$n"
  recorded_pid "k$n" >/dev/null && { note "broker $n already runs"; return 0; }
  (
    cd "$dir"
    # shellcheck disable=SC2086  # KAFKA_HEAP is a list of flags
    exec ip netns exec "$(ns "k$n")" setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$dir/log4j2.properties" \
      -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties"
  ) </dev/null >>"$dir/broker.log" 2>&1 &
  pid=$!
  # ip netns exec and setsid exec (no fork): $! is the JVM itself
  echo "$pid $dir/server.properties" >"$PIDS/k$n"
}

brokers_up() {
  "$REPO_ROOT/deploy/kafka/kafka.sh" fetch
  local cluster_id n
  cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  [[ $cluster_id == -* ]] && cluster_id="A${cluster_id:1}"
  for n in 1 2 3; do
    broker_props "$n"
    java -Xmx192m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$LIBS_DIR/*" \
      -Dlog4j2.configurationFile="$STATE/k$n/log4j2.properties" \
      kafka.tools.StorageTool format --cluster-id "$cluster_id" \
      --config "$STATE/k$n/server.properties" >>"$STATE/k$n/broker.log" 2>&1 ||
      { tail -n 20 "$STATE/k$n/broker.log" >&2; die "formatting broker $n's storage failed"; }
  done
  for n in 1 2 3; do broker_start "$n"; done
  for n in 1 2 3; do wait_port "k$n" 9092 300 "broker $n"; done
  note "brokers listen on $BOOTSTRAP"
}

# ------------------------------------------------------------------ postgres
pg_up() {
  local dir="$STATE/pg" conf
  export PG_DATA_DIR="$dir/data" PG_PORT=5432
  # pg.sh makes the cluster (on 127.0.0.1 of the pg host); then it is opened to the bridge
  in_ns pg "$REPO_ROOT/deploy/postgres/pg.sh" start >/dev/null
  conf="$PG_DATA_DIR/postgresql.conf"
  cat >>"$conf" <<EOF

# ---- deploy/cluster: the database host of the cluster ----
listen_addresses = '127.0.0.1,$NET.20'
# Two app hosts x four services x (web workers + relay + projections), each with a pool.
max_connections = 400
# The relay lease is a session advisory lock: it passes to another host only when this
# server ends the session of a host gone from the network. Keepalives find that out in
# about 2 + 3 x 1 s (the default, 2 hours of silence, would keep the lease that long).
tcp_keepalives_idle = 2
tcp_keepalives_interval = 1
tcp_keepalives_count = 3
EOF
  echo "host all all $NET.0/24 scram-sha-256" >>"$PG_DATA_DIR/pg_hba.conf"
  in_ns pg "$REPO_ROOT/deploy/postgres/pg.sh" stop >/dev/null
  in_ns pg "$REPO_ROOT/deploy/postgres/pg.sh" start >/dev/null
  echo "$(sed -n 1p "$PG_DATA_DIR/postmaster.pid") $PG_DATA_DIR" >"$PIDS/pg"
  wait_port pg 5432 30 "PostgreSQL"
  note "PostgreSQL listens on $NET.20:5432"
}

pg_down() {
  [[ -d $STATE/pg/data ]] || return 0
  ip netns list | grep -qw "$(ns pg)" || return 0
  PG_DATA_DIR="$STATE/pg/data" in_ns pg "$REPO_ROOT/deploy/postgres/pg.sh" stop >/dev/null || true
  stop_recorded pg TERM
}

# ------------------------------------------------------------------ app hosts
app_env() { # N: the environment of app host N (also printed by `env`, for tools)
  cat <<EOF
KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP
KAFKA_TOPIC_REPLICATION_FACTOR=3
KAFKA_TOPIC_MIN_INSYNC_REPLICAS=2
DATABASE_URL=$PG_URL
DATABASE_CONNECT_TIMEOUT_SECONDS=3
DATABASE_STATEMENT_TIMEOUT_SECONDS=5
LEARNSTREAM_VAR_DIR=$STATE/app$1
LEARNSTREAM_BIND_HOST=0.0.0.0
LEARNSTREAM_START_TIMEOUT_SECONDS=240
LEARNSTREAM_CREDENTIALS=$(cat "$STATE/credentials")
WEB_CONCURRENCY=$WEB_CONCURRENCY
CERTIFICATION_PUBLIC_URL=http://${ADDR[app$1]}:8004
EOF
}

app_start() { # N
  local n=$1 pid
  recorded_pid "app$n" >/dev/null && { note "app host $n already runs"; return 0; }
  mkdir -p "$STATE/app$n"
  (
    cd "$REPO_ROOT"
    mapfile -t vars < <(app_env "$n")
    exec ip netns exec "$(ns "app$n")" env "${vars[@]}" setsid "$VENV_BIN/python" -m shared.cli run
  ) </dev/null >>"$STATE/app$n/run.log" 2>&1 &
  pid=$!
  echo "$pid shared.cli" >"$PIDS/app$n"
}

app_wait() { # N
  local n=$1 port deadline=$((SECONDS + 300))
  for port in 8001 8002 8003 8004; do
    until curl -sf -o /dev/null --max-time 2 "http://${ADDR[app$n]}:$port/readyz"; do
      recorded_pid "app$n" >/dev/null || { tail -n 30 "$STATE/app$n/run.log" >&2; die "app host $n's runner exited"; }
      ((SECONDS < deadline)) || { tail -n 30 "$STATE/app$n/run.log" >&2; die "app host $n :$port not ready in 300 s"; }
      sleep 1
    done
  done
}

apps_up() {
  (umask 077; echo "ops:$(head -c18 /dev/urandom | base64 | tr '+/' '-_')" >"$STATE/credentials")
  mapfile -t vars < <(app_env 1)
  # The databases and topics once, from one host, before either runner starts: two
  # runners migrating the same database at once would race in Alembic.
  in_ns app1 env "${vars[@]}" "$VENV_BIN/learnstream" migrate >>"$STATE/prepare.log" 2>&1 ||
    { tail -n 20 "$STATE/prepare.log" >&2; die "migrate failed"; }
  in_ns app1 env "${vars[@]}" "$VENV_BIN/learnstream" topics >>"$STATE/prepare.log" 2>&1 ||
    { tail -n 20 "$STATE/prepare.log" >&2; die "topics failed"; }
  # An LRS key for the load generator (kept in var/cluster/, mode 600).
  (umask 077; in_ns app1 env "${vars[@]}" "$VENV_BIN/learnstream" lrs-credentials create --name "cluster load" \
    --scope all | awk '/^key:/{k=$2} /^secret:/{s=$2} END{print k ":" s}' >"$STATE/lrs-credentials")
  # One after the other: two hosts importing and starting 38 processes at once on this
  # machine's two cores took longer than the runner's 60 s wait for a web tier.
  app_start 1
  app_wait 1
  app_start 2
  app_wait 2
  note "app hosts ready: http://${ADDR[app1]}:8001-8004 and http://${ADDR[app2]}:8001-8004"
}

# ------------------------------------------------------------------ commands
cmd_up() {
  need
  [[ -d $STATE ]] && die "var/cluster exists: a cluster is up, or was not taken down (cluster.sh down)"
  mkdir -p "$PIDS"
  local t0=$SECONDS
  # However `up` fails (die exits), take down what it started: nothing half-up stays.
  trap 'rc=$?; if ((rc)); then note "up failed: taking down what was started"; cmd_down; fi; exit $rc' EXIT
  net_up
  brokers_up
  pg_up
  apps_up
  trap - EXIT
  note "cluster up in $((SECONDS - t0)) s; operator credentials in var/cluster/credentials, an LRS key in var/cluster/lrs-credentials"
}

cmd_down() {
  [[ $(id -u) -eq 0 ]] || die "network namespaces need root"
  local name pid
  for name in app1 app2; do stop_recorded "$name" TERM; done
  pg_down
  # The brokers all at once: one by one, the last waits out its controlled shutdown
  # for a quorum that is gone (30 s, then SIGKILL).
  for name in k1 k2 k3; do pid="$(recorded_pid "$name")" && kill -TERM "$pid" 2>/dev/null; done
  for name in k1 k2 k3; do stop_recorded "$name" TERM; done
  net_down
  rm -rf "$STATE"
  note "cluster down: no namespace, bridge, process or data left"
}

cmd_status() {
  local name pid rc=0
  for name in k1 k2 k3 pg app1 app2; do
    if pid="$(recorded_pid "$name")"; then echo "$name running (pid $pid)"; else echo "$name not running"; rc=1; fi
  done
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) valid_app "${2:-1}"; app_env "${2:-1}" | grep -v '^LEARNSTREAM_CREDENTIALS=' ;;
  kill-broker) valid_broker "${2:-}"; stop_recorded "k$2" KILL ;;
  start-broker)
    # 300 s: a broker killed with -9 recovers its logs first; on this shared machine,
    # with every other host busy, that took over two minutes once.
    valid_broker "${2:-}"; broker_start "$2"; wait_port "k$2" 9092 300 "broker $2" ;;
  stop-app) valid_app "${2:-}"; stop_recorded "app$2" TERM ;;
  start-app) valid_app "${2:-}"; app_start "$2"; app_wait "$2" ;;
  link-down) valid_host "${2:-}"; in_ns "$2" ip link set eth0 down ;;
  link-up) valid_host "${2:-}"; in_ns "$2" ip link set eth0 up ;;
  block-kafka)
    valid_host "${2:-}"
    for n in 1 2 3; do in_ns "$2" ip route replace unreachable "${ADDR[k$n]}/32"; done ;;
  unblock-kafka)
    valid_host "${2:-}"
    for n in 1 2 3; do in_ns "$2" ip route del unreachable "${ADDR[k$n]}/32" 2>/dev/null || true; done ;;
  *)
    sed -n '/^# usage/,/^# environment/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
