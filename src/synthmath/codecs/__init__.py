"""Number encodings (P10, P1000, B1999, FP15) shared by the task families."""
