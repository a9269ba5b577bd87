"""The workflow's jobs as library functions (train, evaluate, job logs): Snakemake scripts and
the CLI both call them, so a run behaves the same inside and outside the workflow."""
