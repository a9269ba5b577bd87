"""Session-wide test order: the real Slurm test runs last.

tools/slurm-up.sh installs the Slurm client tools (apt-get) and the test stops the daemons
again afterwards. From then on every `snakemake` process pays about 10 s at startup: the
SLURM executor plugin, imported by every Snakemake even for local runs, asks the stopped
controller for its config (`scontrol show config`, which waits for its MessageTimeout)
whenever `sinfo` is on PATH. Run after the other workflow tests, that cost about 1.5
minutes of CI time (some 15 Snakemake starts); run last, it costs nothing.
"""

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the tests marked `slurm` to the end, keeping their order (stable sort)."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)
