"""Runs: config loading and validation, study expansion, datasets on disk, run artifacts."""
