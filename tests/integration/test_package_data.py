"""The wheel carries the built-in templates and the default policy, and an installed Tocsin finds them there.

Built offline from this checkout (no build isolation: the dev dependencies hold setuptools), unpacked, and
imported from the unpacked tree in a fresh interpreter started elsewhere, so nothing can come from the
checkout or the working directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.paths import ROOT

# What the wheel is built from: a copy, so setuptools' build/ and egg-info never land in the checkout.
SOURCES = ("pyproject.toml", "README.md", "tocsin", "workflows", "activities", "worker", "templates", "policies")


def build_wheel(into: Path) -> Path:
    source = into / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(into), str(source)],
        check=True,
        capture_output=True,
        cwd=into,
    )
    (wheel,) = into.glob("tocsin-*.whl")
    return wheel


def test_the_wheel_ships_the_templates_and_policy_that_an_installed_tocsin_uses(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"tocsin/templates/{p.name}" for p in (ROOT / "templates").glob("*.j2")}
    assert shipped and shipped <= names
    assert "tocsin/policies/default.yaml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "templates").mkdir(parents=True)  # a planted templates/ in the working directory is never used
    probe = (
        "import tocsin.bundled as b, tocsin.sandboxed_templates as t, tocsin.policy.loader as l;"
        "print(b.DEFAULT_POLICY); print(t.builtin_dir(['postmortem.md.j2', 'status_page.html.j2']));"
        "print(len(l.load_policy(b.DEFAULT_POLICY).incident_classification.severity_levels))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    policy, templates, levels = result.stdout.split("\n")[:3]
    assert Path(policy) == site / "tocsin" / "policies" / "default.yaml"
    assert Path(templates) == site / "tocsin" / "templates"
    assert int(levels) >= 3
