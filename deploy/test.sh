#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs the project, starts Apache Kafka (KRaft)
# and a throwaway PostgreSQL, runs every test (unit, integration, e2e), and stops both whatever happens.
# Extra arguments go to pytest, e.g. `deploy/test.sh -m unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { echo "== $1 ($((SECONDS - started))s so far)" >&2; }

step "python environment"
PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

step "chromium (the web console's e2e tests drive Debian's package; never a downloaded browser)"
if [[ ! -x /usr/bin/chromium ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

work=$(mktemp -d /tmp/radar-test.XXXXXX)
chmod 755 "$work"  # the PostgreSQL cluster runs as the 'postgres' user when we are root
cleanup() {
  deploy/kafka.sh stop "$work/kafka" || true
  deploy/postgres.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT

step "Apache Kafka"
KAFKA_BOOTSTRAP_SERVERS=$(deploy/kafka.sh start "$work/kafka")
export KAFKA_BOOTSTRAP_SERVERS
step "PostgreSQL"
RADAR_TEST_DATABASE_URL=$(deploy/postgres.sh start "$work/pg")
export RADAR_TEST_DATABASE_URL

step "ops tools (promtool, prometheus, kubeconform, composecheck)"
RADAR_TOOLS_BIN=$(deploy/tools.sh)
export RADAR_TOOLS_BIN

step "lint"
.venv/bin/ruff check services shared tests bench
.venv/bin/ruff format --check --quiet services shared tests bench

step "types (mypy, settings in pyproject.toml; a '# type: ignore' is not an answer)"
if grep -rn --include='*.py' "type: *ignore" services shared; then
  echo "the lines above silence the type checker: type them instead" >&2
  exit 1
fi
.venv/bin/mypy

step "tests"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
step "done (pytest exit $status)"
exit $status
