"""Reading a secret setting: `NAME` from the environment, or the contents of the file `NAME_FILE` names.

One reader for every secret Tocsin takes (channel tokens, the LLM's key, the receiver's credentials and
routing keys, the detector's Prometheus URL), so the rules are the same everywhere: both set is an error;
the file is read as UTF-8 and stripped; an empty file is an error, not "unset"; and an error names the
variable and the file, never a value. Each caller turns SecretSettingError into its own kind of error (a
permanent delivery failure, a configuration error at start-up). Configuration layer: no Tocsin imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class SecretSettingError(ValueError):
    """A secret setting that cannot be used; the message names the variable and file, never a value."""


def read_secret_file(path: str, name: str) -> str:
    """The whole file `name` points at (`path`), or SecretSettingError naming both."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise SecretSettingError(f"{name}: cannot read {path}: {reason}") from None


def file_setting(env: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """(`NAME`'s value stripped, or None; `NAME_FILE`'s path, or None): at most one of them, never both."""
    value = (env.get(name) or "").strip() or None
    path = (env.get(f"{name}_FILE") or "").strip() or None
    if value and path:
        raise SecretSettingError(f"set {name} or {name}_FILE, not both")
    return value, path


def read_setting(env: Mapping[str, str], name: str) -> str | None:
    """`NAME`, or the contents of the file `NAME_FILE` names (stripped); None when neither is set."""
    value, path = file_setting(env, name)
    if path is None:
        return value
    text = read_secret_file(path, f"{name}_FILE").strip()
    if not text:
        raise SecretSettingError(f"{name}_FILE: {path} is empty")
    return text
