"""From the files a user wrote to the edits to make: folder defaults, the sidecar, and several edits.

- `incoming/<path>/_defaults.json` sets fields for every clip under that folder; the nearest folder
  wins, and the clip's sidecar overrides field by field. A clip with no sidecar is edited with the
  defaults alone when they include a prompt.
- A sidecar (or defaults file) may hold `"edits": [{"name": "red-jacket", ...}, ...]`: one edit per
  entry, each the shared fields overridden by its own, written to `edited/<path>/<stem>.<name>.mp4`.

Each effective edit remembers where every field came from (the manifest shows it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wanedit.domain.request import FieldOrigin
from wanedit.problems import Problem
from wanedit.sidecar import EDIT_NAME_PATTERN, MAX_EDITS, Sidecar, sidecar_from_document
from wanedit.sidecar_document import SidecarError

EDIT_NAME = re.compile(EDIT_NAME_PATTERN)


@dataclass(frozen=True)
class Layer:
    """One file's JSON object, in order of precedence (farthest defaults first, the sidecar last)."""

    key: str
    document: dict[str, Any]


@dataclass
class Recipe:
    """One edit to make: its name (None for a single-edit sidecar), the sidecar, its fields' origins."""

    name: str | None
    sidecar: Sidecar | None
    origins: dict[str, FieldOrigin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def recipes(layers: list[Layer]) -> list[Recipe]:
    """Every edit the layers describe; a recipe with problems has `sidecar` None."""
    base: dict[str, Any] = {}
    origins: dict[str, FieldOrigin] = {}
    edits: tuple[str, Any] | None = None
    for layer in layers:
        for name, value in layer.document.items():
            if name == "edits":
                edits = (layer.key, value)
                continue
            base[name] = value
            origins[name] = FieldOrigin(key=layer.key)
    if edits is None:
        return [_recipe(None, base, origins, field_prefix="")]
    where, entries = edits
    problems = _edits_problems(entries)
    if problems:
        return [Recipe(name=None, sidecar=None, origins=origins, problems=problems)]
    made = []
    for index, entry in enumerate(entries):
        own = {k: v for k, v in entry.items() if k != "name"}
        made.append(
            _recipe(
                entry["name"],
                {**base, **own},
                {**origins, **dict.fromkeys(own, FieldOrigin(key=where, edit=index))},
                field_prefix=f"edits[{index}].",
            )
        )
    return made


def _recipe(
    name: str | None, document: dict[str, Any], origins: dict[str, FieldOrigin], *, field_prefix: str
) -> Recipe:
    try:
        return Recipe(name=name, sidecar=sidecar_from_document(document), origins=origins)
    except SidecarError as error:
        problems = [_prefixed(problem, field_prefix) for problem in error.problems]
        return Recipe(name=name, sidecar=None, origins=origins, problems=problems)


def _prefixed(problem: Problem, prefix: str) -> Problem:
    if not prefix or not problem.field.startswith("sidecar."):
        return problem
    return problem.model_copy(update={"field": "sidecar." + prefix + problem.field[len("sidecar.") :]})


def _edits_problems(entries: Any) -> list[Problem]:
    limit = f"a list of 1-{MAX_EDITS} objects, each with a unique name (letters, digits, - and _)"
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_EDITS:
        return [Problem(field="sidecar.edits", value=entries, limit=limit, fix=f"give edits as {limit}")]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not EDIT_NAME.match(name):
            problems.append(
                Problem(
                    field=f"sidecar.edits[{index}].name",
                    value=name,
                    limit="1-63 letters, digits, - or _ (it becomes part of the output's file name)",
                    fix='give each edit a "name" such as "red-jacket"',
                )
            )
        elif name in seen:
            problems.append(
                Problem(
                    field=f"sidecar.edits[{index}].name",
                    value=name,
                    limit="unique within the sidecar",
                    fix=f'two edits are named "{name}": their outputs would collide; rename one',
                )
            )
        else:
            seen.add(name)
    return problems
