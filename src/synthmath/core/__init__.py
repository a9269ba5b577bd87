"""The lowest layer: errors, vocabularies, the task contract, raw batches, atomic files, logs."""
