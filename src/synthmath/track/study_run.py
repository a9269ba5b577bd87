"""The study-level MLflow run: a study's table and figure as artifacts, its cells as metrics."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd


def log_report(
    tracking_uri: str | None,
    study: str,
    paths: dict[str, Path],
    table_path: Path,
    prefix: str = "table",
) -> None:
    """Log the study's table and figure as artifacts of a study-level MLflow run, the table's
    cells as metrics ``<prefix>/<row>/<col>`` (a further report: ``table-<name>``)."""
    if not tracking_uri:
        return
    from synthmath.track.mlflow import Tracker, git_commit

    tracker = Tracker(tracking_uri)
    exp = tracker.experiment(study)
    found = tracker.client.search_runs([exp], filter_string="tags.kind = 'study-report'")
    if found:
        run_id = found[0].info.run_id
    else:
        run = tracker.client.create_run(
            exp, run_name=f"{study}-report", tags={"kind": "study-report", "study": study}
        )
        run_id = run.info.run_id
    tracker.set_tags(run_id, {"git_commit": git_commit()})
    tracker.log_artifacts(run_id, [p for p in paths.values() if Path(p).exists()])
    table = pd.read_csv(table_path, index_col=0)
    rows = []
    for r, row in table.iterrows():
        for c, v in row.items():
            if np.isfinite(v):
                rows.append((re.sub(r"[^A-Za-z0-9_\-./ ]", "_", f"{prefix}/{r}/{c}"), float(v), 0))
    tracker.log_metrics(run_id, rows)
    tracker.end_run(run_id)
