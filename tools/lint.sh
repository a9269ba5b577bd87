#!/usr/bin/env bash
# Style and structure checks (CI runs them before the tests): ruff lint and format, snakefmt,
# Snakemake's linter and the import layers of pyproject.toml. Run after tools/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/snakefmt --check Snakefile workflow/
$BIN/snakemake --lint --configfile configs/ci.yaml
$BIN/lint-imports
echo "lint: all clean"
