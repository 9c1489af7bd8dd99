#!/usr/bin/env bash
# The Haystack integration's tests against the oldest Haystack it claims (haystack-ai 2.18.0),
# in a separate virtual environment. Not part of scripts/test.sh: a fresh install takes about
# a minute (about 8 s once the environment exists). Tests that need Haystack 3 (MockChatGenerator,
# Pipeline.close / warm_up_async) skip themselves on 2.x.
#
#   integrations/haystack/scripts/test_haystack2.sh            # 2.18.0 in /tmp/venv-hs-old
#   HAYSTACK_VERSION=2.31.0 HS2_VENV=/tmp/venv-hs231 integrations/haystack/scripts/test_haystack2.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
VENV="${HS2_VENV:-/tmp/venv-hs-old}"
VERSION="${HAYSTACK_VERSION:-2.18.0}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "haystack-ai==$VERSION" "pytest>=8" "pytest-timeout>=2.2" "rank-bm25>=0.2.2"
export PYTHONPATH="$ROOT:$ROOT/integrations/haystack/src" HAYSTACK_TELEMETRY_ENABLED=False
cd "$ROOT"
"$VENV/bin/python" -c "import haystack; print('haystack-ai', haystack.__version__)"
exec "$VENV/bin/python" -m pytest integrations/haystack/tests -q -p no:cacheprovider "$@"
