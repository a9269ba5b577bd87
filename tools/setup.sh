#!/usr/bin/env bash
# Create .venv and install synthmath with its dev tools. Idempotent: a second call is quick.
# torch is pinned to the CPU build by default (an unpinned torch pulls several GB of CUDA
# packages); on a GPU machine set TORCH_SPEC, e.g. TORCH_SPEC="torch" or "torch==2.9.1".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet "$TORCH_SPEC"
fi
# SYNTHMATH_SLURM=1 adds the SLURM executor plugin (extra [slurm]: profiles/slurm, test_slurm.py)
# SYNTHMATH_BASELINES=1 adds the regression baselines (extra [baselines]: pysindy, pyoperon)
EXTRAS=dev
if [ "${SYNTHMATH_SLURM:-0}" = 1 ]; then EXTRAS=$EXTRAS,slurm; fi
if [ "${SYNTHMATH_BASELINES:-0}" = 1 ]; then EXTRAS=$EXTRAS,baselines; fi
.venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
.venv/bin/python -c "import synthmath, torch, snakemake, mlflow; print('synthmath ready: torch', torch.__version__, '| mlflow', mlflow.__version__)"
