"""A GGUF file that passed the header check is not walked again while its size and header
are unchanged; any change to them (in place, even with its modification time set back,
or a new file under the same name) is checked again and a damaged file refused; a
corrupt model loaded through the engine still gives its clear error after a good copy of
it was recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gguf_tools import tiny_model
from tiny_gguf import write_tiny_gguf

from llamadesk.core import gguf_checked
from llamadesk.core.gguf_checked import RECORD_NAME, validate_gguf_once
from llamadesk.core.gguf_validate import GGUFValidationError


def _damage_in_place(path: Path) -> None:
    """Overwrite the tensor count with an absurd one: same size, same inode, and the
    modification time put back as it was."""
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(8)  # magic (4) and version (4), then the tensor count
        fh.write((2**40).to_bytes(8, "little"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_a_file_that_passed_is_walked_once_while_unchanged(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    assert validate_gguf_once(model, cache) is True
    assert validate_gguf_once(model, cache) is False
    assert str(model.resolve()) in json.loads((cache / RECORD_NAME).read_text())


def test_a_file_changed_in_place_is_checked_again_and_refused(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    validate_gguf_once(model, cache)
    _damage_in_place(model)  # only its change time tells it apart
    with pytest.raises(GGUFValidationError, match="not a valid GGUF model"):
        validate_gguf_once(model, cache)
    with pytest.raises(GGUFValidationError):  # a refused file is never recorded
        validate_gguf_once(model, cache)


def test_another_file_under_the_same_name_is_checked_again(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    validate_gguf_once(model, cache)
    same_header = write_tiny_gguf(tmp_path / "same.gguf", seed=3)  # other weights only
    os.replace(same_header, model)  # what the check reads is the same: not walked again
    assert validate_gguf_once(model, cache) is False
    other = write_tiny_gguf(tmp_path / "other.gguf", name="Another tiny model", seed=3)
    os.replace(other, model)
    assert validate_gguf_once(model, cache) is True
    model.write_bytes(model.read_bytes()[:100])  # truncated
    with pytest.raises(GGUFValidationError, match="not a valid GGUF model"):
        validate_gguf_once(model, cache)


def test_a_stricter_check_walks_every_file_again(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    validate_gguf_once(model, cache)
    monkeypatch.setattr(gguf_checked, "CHECK_VERSION", gguf_checked.CHECK_VERSION + 1)
    assert validate_gguf_once(model, cache) is True
    assert validate_gguf_once(model, cache) is False


@pytest.mark.parametrize("record", ["", "not json", "[1, 2]", "{\"x\": 1"])
def test_an_unreadable_record_means_checking_the_file(tmp_path: Path, record: str) -> None:
    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / RECORD_NAME).write_text(record)
    assert validate_gguf_once(model, cache) is True
    assert validate_gguf_once(model, cache) is False


def test_the_record_keeps_only_the_newest_files(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_checked, "MAX_ENTRIES", 2)
    cache = tmp_path / "cache"
    files = [write_tiny_gguf(tmp_path / f"m{i}.gguf", seed=i) for i in range(3)]
    for f in files:
        validate_gguf_once(f, cache)
    kept = json.loads((cache / RECORD_NAME).read_text())
    assert list(kept) == [str(f.resolve()) for f in files[1:]]
    assert validate_gguf_once(files[0], cache) is True


def test_the_engine_refuses_a_model_damaged_after_it_loaded_once(tmp_path: Path,
                                                                 home: Path) -> None:
    from llamadesk.core.paths import app_paths
    from llamadesk.services.engine import EngineError, LlamaEngine, LoadOptions

    model = tiny_model(tmp_path / "tiny.gguf")
    engine = LlamaEngine(kv_cache_bytes=8 * 1024 * 1024)
    try:
        engine.load(model, LoadOptions(n_ctx=128, n_threads=1), model_id="tiny")
        engine.unload()
        record = json.loads((app_paths().cache_dir / RECORD_NAME).read_text())
        assert str(model.resolve()) in record
        _damage_in_place(model)
        with pytest.raises(EngineError, match=r"not a valid GGUF model.*Download or convert"):
            engine.load(model, LoadOptions(n_ctx=128, n_threads=1), model_id="tiny")
    finally:
        engine.unload()


def test_a_hostile_record_means_checking_the_file(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / RECORD_NAME).write_text("[" * 100_000)  # json recurses past Python's limit
    assert validate_gguf_once(model, cache) is True
    assert validate_gguf_once(model, cache) is False
    forged = {str(model.resolve()): {"check": gguf_checked._check_id(), "size": 10**12,
                                     "header": 10**12, "blake2b": "0" * 64}}
    (cache / RECORD_NAME).write_text(json.dumps(forged))
    assert validate_gguf_once(model, cache) is True


def test_the_record_holds_no_timestamp_only_size_and_header_digest(tmp_path: Path) -> None:
    """A model rewritten in place within one clock tick, or on a system whose change
    time is a creation time (Windows), is told apart by its header's digest alone."""
    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    validate_gguf_once(model, cache)
    entry = json.loads((cache / RECORD_NAME).read_text())[str(model.resolve())]
    assert set(entry) == {"check", "size", "header", "blake2b"}
    st = model.stat()
    with model.open("r+b") as fh:
        fh.seek(8)
        fh.write((2**40).to_bytes(8, "little"))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Even were every timestamp the same, the header's bytes differ:
    with pytest.raises(GGUFValidationError, match="not a valid GGUF model"):
        validate_gguf_once(model, cache)


# The checking modules' sources as they were when CHECK_VERSION was last set. A change to
# them fails this test: raise CHECK_VERSION if the check now refuses anything it used to
# accept (files recorded under the old rules are then walked again), and update the digest.
CHECKED_BY = (1, "b73e9abf5ce20c9631896e4ed58df23e05c6eee48f535dad9bd77d923404a179")


def test_check_version_is_raised_with_the_checks_sources() -> None:
    import hashlib

    import llamadesk.core as core_pkg

    core = Path(core_pkg.__file__).parent
    digest = hashlib.sha256()
    for name in ("gguf_validate.py", "gguf_reader.py", "gguf_hazards.py"):
        digest.update((core / name).read_bytes().replace(b"\r\n", b"\n"))
    assert (gguf_checked.CHECK_VERSION, digest.hexdigest()) == CHECKED_BY


REMEMBERED_CHILD = """
import sys
from pathlib import Path
import llamadesk.services.engine  # noqa: F401 - the engine catches the error it raises
from llamadesk.core.gguf_checked import validate_gguf_once
print(validate_gguf_once(Path(sys.argv[1]), Path(sys.argv[2])),
      "llamadesk.core.gguf_reader" in sys.modules, "gguf.constants" in sys.modules)
"""


def test_a_remembered_file_needs_neither_the_reader_nor_ggufs_constants(tmp_path: Path) -> None:
    """The engine and a remembered file's check import no GGUF reader (gguf's constants:
    ~12 ms of CPU on the way to the first token); a file not seen before is walked."""
    import subprocess
    import sys

    model = write_tiny_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    runs = [subprocess.run([sys.executable, "-c", REMEMBERED_CHILD, str(model), str(cache)],
                           capture_output=True, text=True, timeout=120, check=False)
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.split() == ["True", "True", "True"]  # walked: the reader loaded
    assert runs[1].stdout.split() == ["False", "False", "False"]
