"""One URL check for every setting that names a URL, and one way to show a URL without its secrets
(tocsin/addresses.py)."""

from __future__ import annotations

from tocsin.addresses import is_http_url, redact


def test_one_url_check_for_every_url_setting() -> None:
    assert is_http_url("http://127.0.0.1:9090") and is_http_url("https://user:pw@prom.example/x?q=1")
    assert not is_http_url("ftp://host/") and not is_http_url("http://") and not is_http_url("prom:9090")
    assert not is_http_url("http://host:99999/"), "a port out of range is no URL to send to"
    assert not is_http_url("http://host:port/")


def test_redact_keeps_where_a_url_points_and_nothing_secret() -> None:
    assert redact("https://reader:s3cret@prom.example:9443/prometheus?token=t0k#frag") == (
        "https://prom.example:9443/prometheus"
    )
    assert redact("http://user@[::1]:9090/") == "http://[::1]:9090/", "an IPv6 host keeps its brackets"
    assert redact("http://a:b@host:99999/x") == "http://host/x", "a malformed port is left out, not raised"
    assert redact("reader:s3cret@prom:9090") == "[redacted]", "without a host, the user is taken for a scheme"
