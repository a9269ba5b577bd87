"""Log format and levels of synthmath's commands and jobs."""

from __future__ import annotations

import logging
import sys


def setup_logging(stream=None, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
