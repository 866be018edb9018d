"""The Hugging Face token: environment first, then the keyring, else this session only;
never in a repr, a log line or an error message."""

from __future__ import annotations

import logging
import os

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from hub_fixtures import InMemoryKeyring

from llamadesk.core.secrets import (
    HF_USER,
    SERVICE,
    InvalidTokenError,
    SecretStore,
    TokenSource,
)

TOKEN = "hf_SuperSecretTokenValue123"


def test_keyring_round_trip(memory_keyring: InMemoryKeyring,
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = SecretStore(environ={})
    assert store.hf_token() is None and store.hf_token_source() == TokenSource.NONE
    result = store.set_hf_token(f"  {TOKEN}\n")
    assert result.persisted and "keyring" in result.message
    assert memory_keyring.passwords[(SERVICE, HF_USER)] == TOKEN
    fresh = SecretStore(environ={})  # as after a restart
    assert fresh.hf_token() == TOKEN
    assert fresh.hf_token_source() == TokenSource.KEYRING
    assert TOKEN not in repr(fresh) and TOKEN not in caplog.text
    fresh.clear_hf_token()
    assert (SERVICE, HF_USER) not in memory_keyring.passwords
    assert fresh.hf_token() is None


def test_environment_comes_first() -> None:
    store = SecretStore(environ={"HF_TOKEN": "hf_from_env"})
    store.set_hf_token(TOKEN)
    assert store.hf_token() == "hf_from_env"
    assert store.hf_token_source() == TokenSource.ENVIRONMENT
    assert "HF_TOKEN is set" in store.set_hf_token(TOKEN).message


@pytest.mark.parametrize("backend", [keyring.backends.fail.Keyring,
                                     keyring.backends.null.Keyring])
def test_no_usable_keyring_keeps_token_for_session(backend: type,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keyring.set_keyring(backend())
    store = SecretStore(environ={})
    assert not store.keyring_usable()
    result = store.set_hf_token(TOKEN)
    assert not result.persisted
    assert "session only" in result.message
    assert store.hf_token() == TOKEN
    assert store.hf_token_source() == TokenSource.SESSION
    assert SecretStore(environ={}).hf_token() is None  # gone after a restart
    assert TOKEN not in caplog.text and TOKEN not in repr(store)


def test_keyring_errors_fall_back_to_session(memory_keyring: InMemoryKeyring,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*args: object) -> None:
        raise keyring.errors.PasswordSetError("the keyring is locked")

    monkeypatch.setattr(memory_keyring, "set_password", locked)
    store = SecretStore(environ={})
    result = store.set_hf_token(TOKEN)
    assert not result.persisted and "refused" in result.message
    assert store.hf_token() == TOKEN


@pytest.mark.parametrize("bad", ["", "   ", "hf_abc def", "hf_abc\x00"])
def test_invalid_tokens_are_refused_without_echo(bad: str) -> None:
    with pytest.raises(InvalidTokenError) as info:
        SecretStore(environ={}).set_hf_token(bad)
    assert bad.strip() == "" or bad.strip() not in str(info.value)


def test_keyring_discovery_off_macos_asks_for_no_macos_framework() -> None:
    """keyring's discovery imports its macOS backend everywhere; that module looks up
    three macOS frameworks through ctypes, which off macOS runs ldconfig and a compiler
    on every launch. Once the app's secrets module is imported it must not, and the
    backend chosen must still be keyring's own choice."""
    import subprocess
    import sys

    if sys.platform == "darwin":
        pytest.skip("on macOS the Security framework is the keychain")
    probe = (
        "import ctypes.util, os, sys\n"
        "asked = []\n"
        "real = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda name: asked.append(name) or real(name)\n"
        "import llamadesk.core.secrets\n"
        "import keyring\n"
        "backend = keyring.get_keyring()\n"
        "print(sorted(set(asked) & {'Security', 'CoreServices', 'Foundation'}))\n"
        "print(type(backend).__module__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    env["XDG_CONFIG_HOME"] = "/nonexistent-llamadesk-test"  # no keyringrc.cfg choice
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1].startswith("keyring.backends.")


def _run_python(code: str) -> list[str]:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True).stdout.splitlines()


def test_keyring_is_imported_without_urllib_request() -> None:
    """keyring's jaraco.context imports urllib.request (with http.client, email and ssl)
    for a helper keyring never calls: the secrets module imports keyring without it,
    and a later import of urllib.request is the real module, everywhere."""
    out = _run_python(
        "import sys\n"
        "import llamadesk.core.secrets\n"
        "print(sorted(m for m in ('urllib.request', 'http.client', 'ssl') if m in sys.modules))\n"
        "import jaraco.context, keyring, urllib.request\n"
        "print(callable(urllib.request.urlopen), jaraco.context.urllib.request is urllib.request,"
        " sys.modules['urllib.request'] is urllib.request)\n"
        "print(type(keyring.get_keyring()).__module__.startswith('keyring.backends.'))\n")
    assert out == ["[]", "True True True", "True"]


def test_urllib_request_used_while_keyring_imports_is_the_real_module() -> None:
    """A thread that imports urllib.request while keyring is being imported gets the
    stand-in, which reaches the real module at its first use; afterwards the import
    system holds the real module only."""
    out = _run_python(
        "import sys\n"
        "from llamadesk.core.secrets import _urllib_request_deferred\n"
        "with _urllib_request_deferred():\n"
        "    import urllib.request as during\n"
        "    print('http.client' in sys.modules)\n"
        "    opener = during.build_opener\n"
        "    print('http.client' in sys.modules)\n"
        "import urllib.request\n"
        "print(opener is urllib.request.build_opener, during is not urllib.request,"
        " sys.modules['urllib.request'] is urllib.request)\n")
    assert out == ["False", "True", "True True True"]
