"""Private by default: loopback only unless a key is set, the key checked on every
request, CORS off unless origins are listed. These tests bind only 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from api_support import start_server

from llamadesk.api.server import (
    ApiConfigError,
    ApiServer,
    ApiSettings,
    check_settings,
    is_loopback,
)
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.secrets import API_KEY_USER, SERVICE, ApiKeyStore
from llamadesk.services.inference import InferenceService


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.5.6.7", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.10", False),
    ("example.lan", False),
])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_non_loopback_address_needs_a_key() -> None:
    with pytest.raises(ApiConfigError, match="API key"):
        check_settings(ApiSettings(host="0.0.0.0"))
    check_settings(ApiSettings(host="0.0.0.0", api_key="secret"))  # allowed with a key
    check_settings(ApiSettings(host="127.0.0.1"))


def test_the_server_refuses_before_it_binds(service: InferenceService,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def never(_self: object) -> None:
        raise AssertionError("bound a socket")

    monkeypatch.setattr(ApiServer, "_bind", never)
    server = ApiServer(service, ModelRegistry(app_paths().ensure()).models,
                       lambda _m: pytest.fail("resolved a model"),
                       ApiSettings(host="0.0.0.0", port=0))
    with pytest.raises(ApiConfigError):
        server.start()
    assert not server.running


def test_with_a_key_every_request_needs_it(service: InferenceService) -> None:
    server = start_server(service, api_key="ld-test-key")
    try:
        url = f"{server.base_url}/models"
        with httpx.Client(timeout=30) as http:
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": "ld-test-key"}):
                refused = http.get(url, headers=headers)
                assert refused.status_code == 401
                assert refused.json()["error"]["code"] == "invalid_api_key"
            posted = http.post(f"{server.base_url}/chat/completions", json={})
            assert posted.status_code == 401, "checked before the body is read"
            allowed = http.get(url, headers={"Authorization": "Bearer ld-test-key"})
            assert allowed.status_code == 200 and allowed.json()["object"] == "list"
    finally:
        server.stop()


def test_cors_is_off_unless_origins_are_listed(service: InferenceService) -> None:
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    for origins, allowed in (((), False), (("http://app.example",), True)):
        server = start_server(service, allowed_origins=origins)
        try:
            with httpx.Client(timeout=30) as http:
                response = http.get(f"{server.base_url}/models",
                                    headers={"Origin": "http://app.example"})
                header = response.headers.get("access-control-allow-origin")
                assert (header == "http://app.example") is allowed
                options = http.options(f"{server.base_url}/chat/completions",
                                       headers=preflight)
                assert (options.status_code == 200) is allowed
        finally:
            server.stop()


def test_a_port_in_use_is_a_clear_error(service: InferenceService) -> None:
    first = start_server(service)
    try:
        with pytest.raises(ApiConfigError, match="Cannot listen"):
            start_server(service, port=first.port)
    finally:
        first.stop()


def test_the_api_key_lives_in_the_keyring(memory_keyring: object) -> None:
    import keyring

    keys = ApiKeyStore()
    assert keys.get() is None
    made = keys.create()
    assert made.persisted and made.value.startswith("ld-") and len(made.value) > 30
    assert made.value not in repr(made)
    assert keyring.get_password(SERVICE, API_KEY_USER) == made.value
    assert ApiKeyStore().get() == made.value, "a new process finds it"
    assert keys.create().value != made.value
    keys.clear()
    assert ApiKeyStore().get() is None


def test_serve_makes_its_key_once_and_then_reuses_it(memory_keyring: object) -> None:
    import io
    from argparse import Namespace

    from llamadesk.cli.serve import api_key_for

    def flags(api_key: bool = False, new_api_key: bool = False,
              require_key: bool = False) -> Namespace:
        return Namespace(api_key=api_key, new_api_key=new_api_key, require_key=require_key)

    assert api_key_for(flags(), io.StringIO()) is None
    shown = io.StringIO()
    first = api_key_for(flags(api_key=True), shown)
    assert first is not None and first in shown.getvalue(), "shown once, to the user"
    again = io.StringIO()
    assert api_key_for(flags(api_key=True), again) == first
    assert again.getvalue() == "", "not shown a second time"
    replaced = api_key_for(flags(new_api_key=True), io.StringIO())
    assert replaced is not None and replaced != first
    assert ApiKeyStore().get() == replaced
    assert api_key_for(flags(require_key=True), io.StringIO()) == replaced, \
        "--require-key asks for the same key"
