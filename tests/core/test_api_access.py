"""The local API's allowed origins and host names: written the way browsers send them,
bad entries refused with a reason, and kept in the settings file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llamadesk.core.api_access import (
    AccessListError,
    host_of,
    is_loopback_host,
    normalize_host_name,
    normalize_origin,
    parse_list,
)
from llamadesk.core.settings import AppSettings, LocalApiSettings, load_settings, save_settings


@pytest.mark.parametrize(("given", "origin"), [
    ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
    ("HTTPS://App.Example:443/", "https://app.example"),
    ("http://app.example:80", "http://app.example"),
    ("  https://app.example:8443  ", "https://app.example:8443"),
    ("http://[::1]:3000", "http://[::1]:3000"),
])
def test_origins_are_written_as_browsers_send_them(given: str, origin: str) -> None:
    assert normalize_origin(given) == origin


@pytest.mark.parametrize("given", [
    "app.example", "ftp://app.example", "https://app.example/page", "https://u:p@app.example",
    "https://app.example:99999", "https://", "null", "https://bad_name.example",
    "https://app.example?x=1",
])
def test_what_is_not_an_origin_is_refused_with_a_reason(given: str) -> None:
    with pytest.raises(AccessListError, match=r"origin|port|host name"):
        normalize_origin(given)


@pytest.mark.parametrize(("given", "name"), [
    ("LLM.home.arpa", "llm.home.arpa"), ("llm.home.arpa.", "llm.home.arpa"),
    ("[::1]", "::1"), ("192.168.1.10", "192.168.1.10"), ("my-box", "my-box"),
])
def test_host_names(given: str, name: str) -> None:
    assert normalize_host_name(given) == name


@pytest.mark.parametrize("given", ["", "llm.lan:8716", "-bad.lan", "a b", "x" * 64 + ".lan",
                                   "http://llm.lan"])
def test_what_is_not_a_host_name_is_refused(given: str) -> None:
    with pytest.raises(AccessListError, match="host name"):
        normalize_host_name(given)


@pytest.mark.parametrize(("header", "host"), [
    ("localhost", "localhost"), ("localhost:8716", "localhost"), ("[::1]:8716", "::1"),
    ("[::1]", "::1"), ("127.0.0.1:80", "127.0.0.1"), ("Rebind.Attacker.Example:8716",
                                                      "rebind.attacker.example"),
    ("", None), ("[::1", None), ("[::1]x", None), ("host:port", None), ("a:b:c", None),
])
def test_the_host_of_a_host_header(header: str, host: str | None) -> None:
    assert host_of(header) == host


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
    ("0.0.0.0", False), ("localhost.attacker.example", False), ("192.168.1.10", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_lists_split_on_lines_commas_and_spaces_without_duplicates() -> None:
    text = "https://a.example\n\nhttps://A.example:443, http://b.example  http://c.example"
    assert parse_list(text, normalize_origin) == (
        "https://a.example", "http://b.example", "http://c.example")
    with pytest.raises(AccessListError, match=r"'b\.example'"):
        parse_list("https://a.example\nb.example", normalize_origin)


def test_the_settings_keep_the_lists_and_drop_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    wanted = AppSettings(local_api=LocalApiSettings(
        require_key=True, allowed_origins=("https://app.example",),
        allowed_hosts=("llm.home.arpa",)))
    save_settings(path, wanted)
    assert load_settings(path) == wanted
    data = json.loads(path.read_text(encoding="utf-8"))
    data["local_api"]["allowed_origins"] = ["HTTPS://App.Example", "not an origin", 7,
                                            "https://app.example:443"]
    data["local_api"]["allowed_hosts"] = "llm.home.arpa"  # not a list
    data["local_api"]["require_key"] = "yes"  # only true is true
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_settings(path).local_api
    assert loaded.allowed_origins == ("https://app.example",)
    assert loaded.allowed_hosts == () and loaded.require_key is False
