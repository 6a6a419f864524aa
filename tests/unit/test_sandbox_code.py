"""The workflow modules are compiled once per worker process, however many workflow runs import them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from worker import sandbox_code


def fresh_import(name: str) -> object:
    """Import `name` as the sandbox does for each run: a new module object, never the one in sys.modules."""
    saved = {k: v for k, v in sys.modules.items() if k == name or k.startswith(name + ".")}
    for k in saved:
        del sys.modules[k]
    try:
        return importlib.import_module(name)
    finally:
        sys.modules.update(saved)


def test_two_imports_get_two_modules_sharing_one_compiled_code() -> None:
    sandbox_code.install()
    sandbox_code.install()  # once per process, whoever calls it
    assert sum(isinstance(f, sandbox_code.CompiledOnceFinder) for f in sys.meta_path) == 1
    first = fresh_import("workflows.storm_guard")
    second = fresh_import("workflows.storm_guard")
    assert first is not second, "each run keeps its own module objects (the sandbox's isolation)"
    one, two = first.StormGuardWorkflow.admit, second.StormGuardWorkflow.admit  # type: ignore[attr-defined]
    assert one is not two
    assert one.__code__ is two.__code__, "compiled once, shared by both"
    assert str(Path("workflows/storm_guard.py").absolute()) in sandbox_code.compiled_files()


def test_modules_outside_the_workflow_package_load_as_usual() -> None:
    finder = sandbox_code.CompiledOnceFinder(["workflows"])
    assert finder.find_spec("tocsin.storm.consolidation", None) is None
    spec = finder.find_spec("workflows", None)
    assert spec is not None and spec.loader is not None
    assert type(spec.loader).__name__ == "_CompiledOnce"
