"""SIGKILL at random moments while a real process encrypts a plaintext database of the
current schema (branches, 10,000 messages): after each kill, the next start finds one
complete database with exactly the original content, and no plaintext copy beside it."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crypt_fixtures import build_plaintext, dump, protect_with_passphrase

from llamadesk.core.db import is_plaintext
from llamadesk.core.paths import app_paths
from llamadesk.core.store_keys import PASSPHRASE_FILE_ENV
from llamadesk.core.store_open import open_store, store_key

CHILD = Path(__file__).resolve().parents[1] / "support" / "encrypt_until_killed.py"
PASSPHRASE = "kill test passphrase"
ROUNDS = 10


def _start(home: Path, secret: Path) -> subprocess.Popen[str]:
    # The key is wrapped ahead, at the tests' scrypt cost: what the child's store_key
    # would write before "start"; the kills all fall after it, in the encryption.
    protect_with_passphrase(home, PASSPHRASE)
    env = {**os.environ, "LLAMADESK_HOME": str(home), PASSPHRASE_FILE_ENV: str(secret),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.Popen([sys.executable, str(CHILD)], env=env, stdout=subprocess.PIPE,
                            text=True)


def _wait_for(child: subprocess.Popen[str], word: str) -> float:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line == word, f"child said {line!r}, exit {child.poll()}"
    return time.monotonic()


def test_a_kill_at_any_moment_of_the_encryption_leaves_one_complete_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template = tmp_path / "template.sqlite3"
    build_plaintext(template, messages=10_000, chats=40)
    expected = dump(template, None)
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")

    # One run to the end, to know how long the migration takes here.
    home = tmp_path / "measure"
    app_paths(home).ensure()
    shutil.copy(template, app_paths(home).database)
    child = _start(home, secret)
    started = _wait_for(child, "start")
    _wait_for(child, "done")
    span = time.monotonic() - started
    assert child.wait(60) == 0

    rng = random.Random(int(os.environ.get("LLAMADESK_KILL_SEED", "19")))
    left: list[str] = []
    for n in range(ROUNDS):
        home = tmp_path / f"round{n}"
        paths = app_paths(home).ensure()
        shutil.copy(template, paths.database)
        child = _start(home, secret)
        _wait_for(child, "start")
        # Stratified: round n dies in the n-th tenth of the run, so the kills spread
        # over export, verification, swap and wipe rather than bunching.
        time.sleep(span * (n + rng.random()) / ROUNDS)
        child.send_signal(signal.SIGKILL)
        child.wait(60)
        left.append(",".join(sorted(p.name for p in paths.data_dir.iterdir())))
        monkeypatch.setenv("LLAMADESK_HOME", str(home))
        store = open_store(paths, passphrase=PASSPHRASE)  # the next start
        store.close()
        assert not is_plaintext(paths.database), f"round {n}"
        assert dump(paths.database, store_key(paths, PASSPHRASE)) == expected, f"round {n}"
        names = sorted(p.name for p in paths.data_dir.iterdir())
        assert names == ["llamadesk.protection.json", "llamadesk.sqlite3"], (n, names)
    print("files left by the kills:", left)
