"""What ships inside the package: the built-in templates and the default policy.

The repository keeps them at its top level (`templates/`, `policies/`); `tocsin/templates` and
`tocsin/policies` are symlinks to them, so a checkout, an editable install and a wheel (which copies the
files through the links as package data, pyproject.toml) all find them at the same place beside this module.

Override order, first match wins:
- the policy: `--policy` on the command line, then `TOCSIN_POLICY`, then DEFAULT_POLICY;
- a template: `$TOCSIN_HOME/templates/<name>`, then TEMPLATES (tocsin.sandboxed_templates). Never the working
  directory: a `templates/` wherever Tocsin happens to be started must not replace a public page.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES = PACKAGE_DIR / "templates"
DEFAULT_POLICY = PACKAGE_DIR / "policies" / "default.yaml"
