#!/usr/bin/env bash
# The two entry points of the README. Both set up what is missing first (scripts/setup.sh).
#   ./run.sh main [options]   the main job end to end on the embedded default (python -m bench.pipeline --help)
#   ./run.sh test [pytest options]   lint, format check and the test suite
set -euo pipefail
cd "$(dirname "$0")"
command=${1:-}
shift || true
case "$command" in
  main)
    bash scripts/setup.sh
    exec .venv/bin/python -m bench.pipeline "$@"
    ;;
  test)
    bash scripts/setup.sh
    .venv/bin/python -m ruff check .
    .venv/bin/python -m ruff format --check .
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh main [options] | ./run.sh test [pytest options]" >&2
    exit 2
    ;;
esac
