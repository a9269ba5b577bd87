"""Metric names MLflow refuses are made valid, not an error after the evaluation."""

from synthmath.track.mlflow import metric_name


def test_invalid_characters_become_underscores_and_valid_names_stay():
    assert metric_name("test/id/length_<25/acc") == "test/id/length__25/acc"
    assert metric_name("test/id/size_5x5/acc@10") == "test/id/size_5x5/acc_10"
    assert metric_name("valid/acc_beam10: x-1.5") == "valid/acc_beam10: x-1.5"
