"""The package's layers (pyproject.toml, [tool.importlinter]) hold, and nothing imports in a circle."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(src), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_layer_contracts_are_kept():
    proc = lint_imports(ROOT, ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    "module, planted",
    [
        ("core/vocab.py", "import synthmath.runs.plan"),  # a low layer importing a high one
        ("tasks/linalg/ops.py", "from synthmath.tasks.metabolic import graphs"),  # two families
    ],
)
def test_contracts_fail_on_a_forbidden_import(tmp_path, module, planted):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "synthmath", src / "synthmath")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = src / "synthmath" / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    proc = lint_imports(tmp_path, src)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Import cycles: the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.add(other)
                if other == module:
                    break
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles():
    assert strongly_connected(grimp.build_graph("synthmath")) == []


def test_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert strongly_connected(graph) == [{"p.a", "p.b", "p.c"}]
