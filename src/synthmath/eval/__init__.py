"""Evaluation: greedy and beam decoding, predictions and scoring summaries."""
