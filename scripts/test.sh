#!/usr/bin/env bash
# The full test suite, from a fresh clone: bash scripts/test.sh [pytest args]
# Sets up .venv (core, all extras, the three framework integrations), then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP_PROFILE=dev source scripts/_setup.sh
set +e
"$PY" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests for this selection"
  exit 0
fi
exit "$rc"
