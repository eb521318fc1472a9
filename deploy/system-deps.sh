#!/usr/bin/env bash
# Installs the system packages learnstream needs that a fresh Debian machine may lack,
# and nothing when they are all there (so `make run`, `make test` and .ci/run can all
# call it): Java + Maven (the Kafka broker), PostgreSQL (the second test run and
# production-like runs), Chromium + chromedriver (the dashboard's browser tests); with
# --bench also wrk, the HTTP load generator of bench.lrs and bench.peer (`make bench`);
# with --cluster iproute2 and curl (deploy/cluster: network namespaces, readiness checks).
#
# usage: deploy/system-deps.sh [--check] [--bench] [--cluster]
#   --check    lists what is missing, installs nothing
#   --bench    also what `make bench` needs beyond `make run`
#   --cluster  also what `make cluster-up` needs (deploy/cluster/cluster.sh)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

check=0 bench=0 cluster=0
for arg in "$@"; do
  case $arg in
    --check) check=1 ;;
    --bench) bench=1 ;;
    --cluster) cluster=1 ;;
    *) echo "usage: $0 [--check] [--bench] [--cluster]" >&2; exit 2 ;;
  esac
done

have_pg_server() {
  { command -v pg_ctl && command -v initdb; } >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null
}

pkgs=()
have_pg_server || pkgs+=(postgresql)
command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
command -v make >/dev/null 2>&1 || pkgs+=(make)
command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || pkgs+=(python3-venv)
command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || pkgs+=(chromium-driver)
if ((bench)); then
  command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
fi
if ((cluster)); then
  command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
fi
# node + npm: the AsyncAPI parser that checks docs/asyncapi.yaml (tests/asyncapi, installed by the test)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

if ((${#pkgs[@]} == 0)); then
  exit 0
fi
if ((check)); then
  echo "missing system packages: ${pkgs[*]}"
  exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
echo "installing system packages: ${pkgs[*]}"
# the JRE's postinst fails on slim images without man page dirs
"${sudo[@]}" mkdir -p /usr/share/man/man1
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${pkgs[@]}"
