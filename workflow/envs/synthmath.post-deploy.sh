#!/usr/bin/env bash
# Snakemake runs this once inside the new conda environment, from the workflow's directory (the
# repository root): install synthmath with the dependencies pyproject.toml declares. Set
# TORCH_SPEC (e.g. torch==2.13.0 for the CPU build) to choose the torch build first.
set -euo pipefail
if [ -n "${TORCH_SPEC:-}" ]; then python -m pip install "$TORCH_SPEC"; fi
python -m pip install --editable .
