"""Every metric wanedit.metrics defines is emitted somewhere: the dashboard charts no dead line."""

import ast
from pathlib import Path

from wanedit import metrics

REPO = Path(__file__).resolve().parents[2]
SOURCES = [*(REPO / "layers/common/wanedit").rglob("*.py"), *(REPO / "functions").rglob("*.py")]


def emitted_names() -> set[str]:
    """The constants passed first to any `.emit(...)` call of the layer or the handlers."""
    names: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                names.add(node.args[0].id)
    return names


def test_every_defined_metric_has_an_emit_site() -> None:
    defined = {name for name, value in vars(metrics).items() if isinstance(value, metrics.Metric)}
    assert len(defined) == len(metrics.ALL)
    assert defined - emitted_names() == set()
