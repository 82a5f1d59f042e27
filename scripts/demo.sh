#!/usr/bin/env bash
# Set up (first run only) and run the demo search: `bash scripts/demo.sh [automl search options]`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/_setup.sh
source "$here/_setup.sh" "dashboard,export"  # the demo's own hints use both
exec automl search "$@"
