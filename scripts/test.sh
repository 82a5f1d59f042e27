#!/usr/bin/env bash
# Set up (first run only) and run the test suite: `bash scripts/test.sh [pytest options]`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/_setup.sh
source "$here/_setup.sh" "all"
# Browser tests drive Debian's Chromium (never a browser download).
if ! command -v chromium >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium for the browser tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "setup: chromium not installed" >&2
fi
cd "$root"
exec python -m pytest -q "$@"
