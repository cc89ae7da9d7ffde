"""Read template.yaml the way CloudFormation does, for the local stack and the infra tests.

A YAML loader for CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``…)
that yields the long form (``{"Ref": …}``, ``{"Fn::GetAtt": [...]}``), and a small evaluator of
the intrinsic functions the template uses, given parameter values and what each resource's
``Ref``/``Fn::GetAtt`` stands for.

Why our own ~150 lines rather than ``cfnlint.decode.cfn_yaml``: that loader would do, but
importing cfn-lint costs about a second and ties the local stack (and ``wanedit local up``) to a
linter's internal module; the tag set is small and fixed, and plain dicts are easier to reason
about than cfn-lint's position-carrying node classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Tags whose long form is not simply "Fn::<Tag>".
_SPECIAL_TAGS = {"Ref": "Ref", "Condition": "Condition"}


class TemplateError(ValueError):
    """The template uses something this evaluator cannot resolve (or refers to nothing)."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short-form intrinsic tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = _SPECIAL_TAGS.get(tag_suffix, f"Fn::{tag_suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":  # !GetAtt Res.Attr -> ["Res", "Attr"]
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain dicts and lists, intrinsics in their long form."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


def parameter_values(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Each parameter's value as CloudFormation passes it (a string): the override, else the default."""
    declared: Mapping[str, Any] = template.get("Parameters", {})
    unknown = set(overrides or {}) - set(declared)
    if unknown:
        raise TemplateError(f"unknown parameters: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if overrides and name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default and no value")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} not in {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
        values[name] = value
    _check_rules(template, values)
    return values


def _check_rules(template: Mapping[str, Any], values: Mapping[str, str]) -> None:
    """Refuse the parameter values the template's Rules refuse, as CloudFormation does first."""
    resolver = Resolver(template=template, parameters=values, pseudo={})
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not resolver.resolve(assertion["Assert"]):
                raise TemplateError(f"rule {name}: {assertion.get('AssertDescription', 'assertion failed')}")


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameters, pseudo parameters and known resources.

    ``refs`` maps a logical ID to what ``Ref`` returns; ``attributes`` maps (logical ID, attribute)
    to what ``Fn::GetAtt`` returns. Both grow as the local stack creates resources.
    """

    template: Mapping[str, Any]
    parameters: Mapping[str, str]
    pseudo: Mapping[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise TemplateError(f"no condition {name}")
            self._conditions[name] = bool(self.resolve(definitions[name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"cannot resolve Ref {name} (not a parameter or a created resource)")

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}") from None

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated; AWS::NoValue entries dropped."""
        if isinstance(value, list):
            resolved = [self.resolve(item) for item in value]
            return [item for item in resolved if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, argument)
        items = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not _NO_VALUE}

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} -> ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _SUB_VARIABLE.sub(replace, text)


_NO_VALUE = object()


def _ref(resolver: Resolver, name: Any) -> Any:
    if name == "AWS::NoValue":
        return _NO_VALUE
    return resolver.ref(name)


def _get_att(resolver: Resolver, argument: Any) -> str:
    logical_id, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
    return resolver.get_att(logical_id, resolver.resolve(attribute))


def _if(resolver: Resolver, argument: Any) -> Any:
    name, when_true, when_false = argument
    return resolver.resolve(when_true if resolver.condition(name) else when_false)


def _equals(resolver: Resolver, argument: Any) -> bool:
    left, right = (resolver.resolve(a) for a in argument)
    return str(left) == str(right)


def _join(resolver: Resolver, argument: Any) -> str:
    delimiter, items = argument
    return str(delimiter).join(str(i) for i in resolver.resolve(items))


def _select(resolver: Resolver, argument: Any) -> Any:
    index, items = argument
    return resolver.resolve(items)[int(resolver.resolve(index))]


def _split(resolver: Resolver, argument: Any) -> list[str]:
    delimiter, text = argument
    return str(resolver.resolve(text)).split(delimiter)


_FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r.resolve(x) for x in a),
    "Condition": lambda r, a: r.condition(a),
    "Fn::Contains": lambda r, a: str(r.resolve(a[1])) in [str(v) for v in r.resolve(a[0])],
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
}


def references(value: Any) -> set[str]:
    """Logical IDs (or parameter names) that ``value`` refers to via Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and isinstance(argument, str):
                return {argument}
            if key == "Fn::GetAtt":
                parts = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return {str(parts[0])}
            if key == "Fn::Sub":
                text = argument[0] if isinstance(argument, list) else argument
                for name in _SUB_VARIABLE.findall(text):
                    if not name.startswith("!"):
                        found.add(name.split(".", 1)[0])
                if isinstance(argument, list):
                    found -= set(argument[1])
                    found |= references(argument[1])
                return found
        for item in value.values():
            found |= references(item)
    return found
