"""A lint gate ruff does not have: no function over 50 lines, no module of the core over 400.

Short functions and modules are what keeps a state machine readable; ruff's C901 (complexity 10)
guards the branching, this guards the length. Usage: python -m tools.sizes [paths...]
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_FUNCTION_LINES = 50
MAX_CORE_MODULE_LINES = 400
CORE = Path("layers/common/wanedit")
DEFAULT_PATHS = ("layers", "functions")


def python_files(paths: list[str]) -> Iterator[Path]:
    for path in map(Path, paths):
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def problems(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n") + 1
    if path.is_relative_to(CORE) and lines > MAX_CORE_MODULE_LINES:
        yield f"{path}: {lines} lines (at most {MAX_CORE_MODULE_LINES} in {CORE})"
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > MAX_FUNCTION_LINES:
                yield f"{path}:{node.lineno}: {node.name} is {length} lines (at most {MAX_FUNCTION_LINES})"


def main(argv: list[str]) -> int:
    found = [problem for path in python_files(argv or list(DEFAULT_PATHS)) for problem in problems(path)]
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
