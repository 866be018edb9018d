"""A real chat on the app's encrypted store, SIGKILLed mid-reply (the reply's draft
checkpoints are commits too): no file left anywhere in the app's folders (database,
WAL, shm, logs, settings) holds the text of a question, and the next start reads every
committed message back."""

from __future__ import annotations

from pathlib import Path

from crypt_fixtures import files_containing
from kill_harness import Forker, check_database, child_env, kill_round

from llamadesk.core.paths import app_paths
from llamadesk.core.store_open import open_store

MARKER = "zebramarker7qx"


def test_no_question_text_reaches_any_file_after_a_kill_mid_reply(
        tmp_path: Path, bundled_model_path: Path, store_passphrase: str) -> None:
    home = tmp_path / "home"
    paths = app_paths(home).ensure()
    env = child_env(home)
    committed = []
    with Forker(env) as forker:
        for delay in (0.8, 1.6):
            round_ = kill_round(paths.database, env, delay, marker=MARKER, forker=forker)
            assert not round_.errors, round_.errors
            assert round_.exit_code == -9, "ended by the kill"
            committed += round_.committed
    assert any(c.role == "user" for c in committed), "questions were stored before the kill"
    assert check_database(paths.database, committed) == []
    assert files_containing(home, [MARKER, "name a colour and a fruit"]) == []
    store = open_store(paths, store_passphrase)  # the next start reads them back
    try:
        assert store.search(MARKER), "the questions are in the (encrypted) database"
    finally:
        store.close()
