"""One reader for every `NAME` / `NAME_FILE` secret: the same rules, and errors that never hold a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocsin.secret_settings import SecretSettingError, file_setting, read_secret_file, read_setting


def test_the_variable_or_the_file_stripped_and_none_when_neither(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("  s3cr3t\n")
    assert read_setting({"TOKEN": " direct "}, "TOKEN") == "direct"
    assert read_setting({"TOKEN_FILE": str(secret)}, "TOKEN") == "s3cr3t"
    assert read_setting({"TOKEN": "  ", "TOKEN_FILE": ""}, "TOKEN") is None, "set but blank is unset"
    assert read_setting({}, "TOKEN") is None


def test_errors_name_the_variable_and_file_never_the_value(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cases = {
        "set TOKEN or TOKEN_FILE, not both": {"TOKEN": "s3cr3t", "TOKEN_FILE": str(secret)},
        f"TOKEN_FILE: {empty} is empty": {"TOKEN_FILE": str(empty)},
        f"TOKEN_FILE: cannot read {tmp_path / 'missing'}: No such file or directory": {
            "TOKEN_FILE": str(tmp_path / "missing")
        },
    }
    for message, env in cases.items():
        with pytest.raises(SecretSettingError) as caught:
            read_setting(env, "TOKEN")
        assert str(caught.value) == message
        assert "s3cr3t" not in str(caught.value)
    assert isinstance(caught.value, ValueError), "callers that report ValueErrors report these too"


def test_file_setting_and_the_raw_file_for_callers_that_parse_it(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("a\n# b\nc\n")
    assert file_setting({"KEYS_FILE": str(keys)}, "KEYS") == (None, str(keys))
    assert file_setting({"KEYS": " x "}, "KEYS") == ("x", None)
    assert read_secret_file(str(keys), "KEYS_FILE") == "a\n# b\nc\n"
    undecodable = tmp_path / "binary"
    undecodable.write_bytes(b"\xff\xfe")
    with pytest.raises(SecretSettingError, match=f"^KEYS_FILE: cannot read {undecodable}: UnicodeDecodeError$"):
        read_secret_file(str(undecodable), "KEYS_FILE")
