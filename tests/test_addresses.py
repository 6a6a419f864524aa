"""One URL check for every setting that names a URL (tocsin/addresses.py)."""

from __future__ import annotations

from tocsin.addresses import is_http_url


def test_one_url_check_for_every_url_setting() -> None:
    assert is_http_url("http://127.0.0.1:9090") and is_http_url("https://user:pw@prom.example/x?q=1")
    assert not is_http_url("ftp://host/") and not is_http_url("http://") and not is_http_url("prom:9090")
    assert not is_http_url("http://host:99999/"), "a port out of range is no URL to send to"
    assert not is_http_url("http://host:port/")
