# Sourced by demo.sh and test.sh: a virtual environment with automl installed, ready to run.
# torch: a torch already installed is kept; with none, the CPU build 2.13.0 goes in first
# (any other spec would pull several GB of CUDA packages).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${AUTOML_VENV:-$root/.venv}
extras=${1:-}
if [[ ! -x $venv/bin/python ]]; then
  echo "setup: creating $venv" >&2
  "${PYTHON:-python3}" -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch 2.13.0 (CPU)" >&2
  python -m pip install -q "torch==2.13.0"
fi
# Re-install only when the project's dependencies changed or an extra is missing ("all" has every extra).
stamp=$venv/.automl-installed
hash=$(sha1sum "$root/pyproject.toml" | cut -c1-40)
have=$(cat "$stamp" 2>/dev/null || true)
want="$hash [$extras]"
installed() {
  [[ $have == "$hash ["*"]" ]] || return 1
  local had=${have#"$hash ["} extra
  had=${had%"]"}
  [[ $had == all ]] && return 0
  for extra in ${extras//,/ }; do
    [[ ",$had," == *",$extra,"* ]] || return 1
  done
}
if ! installed; then
  echo "setup: installing automl${extras:+[$extras]} into $venv" >&2
  python -m pip install -q -e "$root${extras:+[$extras]}" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
  python -c "import automl, torch, optuna, sqlalchemy" || { echo "setup: install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
