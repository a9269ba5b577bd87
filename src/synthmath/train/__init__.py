"""Training: settings, schedule, batches, the callback trainer, checkpoints and resume, DDP."""
