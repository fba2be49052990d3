"""``maintenance_flags.redirects``: which targets are accepted, and which one is this host's."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from maintenance_flags.redirects import is_valid, path_on_this_host


@pytest.mark.parametrize(
    "url",
    ["/", "/status/", "/a%20b/?x=1#top", "https://status.example.org/", "http://127.0.0.1:8000/down"],
)
def test_valid_targets(url: str) -> None:
    assert is_valid(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "status/",
        "//evil.example/",
        "javascript:alert(1)",
        "ftp://files.example/",
        "https://",
        " /status/",
        "/sta tus/",
        "/a\\b",
        "/\x00",
        "http://[::1/",
        "/" + "a" * 2000,
        None,
    ],
)
def test_invalid_targets(url: object) -> None:
    assert not is_valid(url)  # type: ignore[arg-type]


def test_the_target_path_on_this_host() -> None:
    request = RequestFactory().get("/", headers={"Host": "testserver"})
    assert path_on_this_host("/status/", request) == "/status/"
    assert path_on_this_host("/%C3%BCber/", request) == "/über/"
    assert path_on_this_host("https://testserver:8443/s/", request) == "/s/"
    assert path_on_this_host("https://testserver", request) == "/"
    assert path_on_this_host("https://status.example.org/s/", request) is None


@override_settings(ALLOWED_HOSTS=["example.com"])
def test_a_disallowed_host_is_not_this_host() -> None:
    request = RequestFactory().get("/", headers={"Host": "evil.example"})
    assert path_on_this_host("https://evil.example/s/", request) is None
