"""MLflow tracking: the client wrapper, the training callback, the study-level report run."""
