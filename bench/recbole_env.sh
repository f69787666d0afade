#!/usr/bin/env bash
# Idempotently create/refresh the isolated RecBole 1.2.1 venv at bench/.recbole-venv.
# RecBole is kept out of the project's own venv (its pins clash with ours).
# Usage: bash bench/recbole_env.sh [--force]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.recbole-venv"
PY="$VENV/bin/python"
MARKER="$VENV/.recbole-ok"
PYTHON="${PYTHON:-python3}"

check() {
  [ -x "$PY" ] || return 1
  "$PY" - <<'PYEOF' >/dev/null 2>&1
import warnings; warnings.filterwarnings("ignore")
import torch, numpy, scipy, pandas, pkg_resources, recbole
from recbole.model.general_recommender import LightGCN
import scipy.sparse as sp
assert recbole.__version__ == "1.2.1", recbole.__version__
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert int(numpy.__version__.split(".")[0]) < 2
assert hasattr(sp.dok_matrix, "_update"), "scipy too new for LightGCN"
PYEOF
}

if [ "${1:-}" != "--force" ] && [ -f "$MARKER" ] && check; then
  echo "[recbole_env] $VENV already OK (recbole 1.2.1); nothing to do"
  exit 0
fi

if [ ! -x "$PY" ]; then
  echo "[recbole_env] creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "[recbole_env] installing torch==2.13.0 + recbole==1.2.1"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==2.13.0" "recbole==1.2.1"
# ray needs pkg_resources (setuptools<81) and np.bool8 (numpy<2);
# LightGCN's dok_matrix._update was removed in SciPy>=1.12.
echo "[recbole_env] pinning setuptools<81 numpy<2 pandas<3 scipy<1.12 (keeping torch==2.13.0)"
"$VENV/bin/pip" install -q "torch==2.13.0" "setuptools<81" "numpy<2" "pandas<3" "scipy<1.12"

if check; then
  date -u +%FT%TZ > "$MARKER"
  echo "[recbole_env] OK: $("$PY" -c 'import recbole,torch,numpy,scipy;print("recbole",recbole.__version__,"torch",torch.__version__,"numpy",numpy.__version__,"scipy",scipy.__version__)' 2>/dev/null)"
else
  echo "[recbole_env] FAILED: import check did not pass" >&2
  "$PY" -c 'import recbole' || true
  exit 1
fi
