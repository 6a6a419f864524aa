"""Load a policy file, or fail with one message that names the file, the place in it and the problem."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tocsin.bundled import DEFAULT_POLICY
from tocsin.policy import status_page
from tocsin.policy.schema import LOADING, Policy
from tocsin.policy.status_page import StatusPagePolicy

_CROSS_REF = re.compile(r"^[a-z_]+(\.[\w-]+)+: ")


class PolicyError(Exception):
    """A policy that cannot be used. str() is the whole message for a person; there is no traceback to read."""


def node_at(root: yaml.Node | None, path: list[str | int]) -> yaml.Node | None:
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _data_path(data: Any, loc: tuple[int | str, ...]) -> list[str | int]:
    """Pydantic's error location, less the parts that are not in the file (union tags, '[key]')."""
    path: list[str | int] = []
    cursor = data
    for part in loc:
        if isinstance(cursor, dict) and part in cursor:
            cursor = cursor.get(part)
        elif isinstance(cursor, list) and isinstance(part, int) and 0 <= part < len(cursor):
            cursor = cursor[part]
        else:
            continue
        path.append(part)
    return path


def problem_text(error: Any) -> str:
    """One pydantic error as a person reads it: without pydantic's 'Value error, ' wrapping of our own words."""
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        return "unknown key (a typo?)"
    if error["type"] == "missing":
        return "required, but missing"
    if error["type"] == "union_tag_invalid":
        expected = msg.split("expected tags: ")[-1]
        return f"unknown action type {error['input'].get('type')!r} (known: {expected})"
    if error["type"] == "literal_error":
        return f"{error['input']!r} is not allowed; {msg.lower()}"
    return msg


def format_error(source: str, root: yaml.Node | None, data: Any, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        path = _data_path(data, error["loc"])
        if error["type"] == "missing" and error["loc"]:
            path.append(error["loc"][-1])
        problem = problem_text(error)
        if not path and _CROSS_REF.match(problem):
            # Cross-reference checks run on the whole policy and name their own place: "a.b.0.c: ...".
            dotted, problem = problem.split(": ", 1)
            path = [int(p) if p.isdigit() else p for p in dotted.split(".")]
        # A missing key has no line of its own: point at the mapping that should hold it.
        anchor = path[:-1] if error["type"] == "missing" else path
        node = node_at(root, anchor)
        where = f"{source}:{node.start_mark.line + 1}" if node is not None and anchor else source
        dotted = ".".join(str(p) for p in path) or "(top level)"
        lines.append(f"{where}: {dotted}: {problem}")
    return "\n".join(lines)


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML lets a later key silently replace an earlier one; in a policy that hides a whole severity level."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text)
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise PolicyError(f"{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: (top level): expected a mapping of policy sections, got {type(data).__name__}")
    try:
        return Policy.model_validate(data, context=LOADING)
    except ValidationError as exc:
        raise PolicyError(format_error(source, root, data, exc)) from None


def load_policy(path: str | Path) -> Policy:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{file}: no such policy file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{file}: cannot read: {exc}") from None
    return parse_policy(text, str(file))


def worker_status_page(env: Mapping[str, str] | None = None) -> StatusPagePolicy:
    """The section of the policy this process runs (`TOCSIN_POLICY`), for a channel that publishes: what the
    public sees comes from the worker's own policy, never from what a workflow hands the activity. ValueError
    names the variable at fault."""
    env = os.environ if env is None else env
    try:
        policy = load_policy(Path(env.get("TOCSIN_POLICY") or DEFAULT_POLICY))
    except PolicyError as err:
        raise ValueError(f"TOCSIN_POLICY: {err}") from None
    return status_page.resolve(policy.status_page, env)
