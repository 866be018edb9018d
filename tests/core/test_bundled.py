"""The bundled model's manifest and its quick and full checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llamadesk.core import bundled, paths

ROOT = Path(__file__).resolve().parents[2]
REAL_RESOURCES = ROOT / "resources"

# -- the bundled model -------------------------------------------------------------------------


def test_manifest_matches_the_json() -> None:
    data = json.loads((REAL_RESOURCES / "bundled-model.json").read_text(encoding="utf-8"))
    m = bundled.manifest()
    assert (m.id, m.name, m.file, m.size, m.sha256) == (
        data["id"], data["name"], data["file"], data["size"], data["sha256"])
    assert m.licence_id == data["licence"]["id"]
    assert m.chat_format == data["chat_format"]
    assert m.context_length == data["context_length"]
    assert m.path == REAL_RESOURCES / "models" / data["file"]


def test_locate_the_real_file(bundled_model_path: Path) -> None:
    model = bundled.locate(verify_hash=True)
    assert model.path == bundled_model_path
    assert bundled_model_path.stat().st_size == model.size
    assert bundled_model_path == REAL_RESOURCES / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def fake_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A resources folder with the real manifest and no model (yet)."""
    folder = tmp_path / "resources"
    (folder / "models").mkdir(parents=True)
    shutil.copy(REAL_RESOURCES / "bundled-model.json", folder / "bundled-model.json")
    monkeypatch.setenv(paths.RESOURCES_ENV, str(folder))
    return folder


def fake_model(folder: Path, size: int, head: bytes) -> Path:
    """A sparse file of ``size`` bytes starting with ``head``: cheap even at 100 MB."""
    path = folder / "models" / bundled.manifest().file
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def test_missing_model_says_how_to_fix_it(fake_resources: Path) -> None:
    with pytest.raises(bundled.BundledModelError) as info:
        bundled.locate()
    text = str(info.value)
    assert "missing" in text
    assert str(fake_resources / "models" / bundled.manifest().file) in text
    assert "set-up" in text
    assert "tools/dev.py setup" in text


@pytest.mark.parametrize(("size_delta", "head"), [
    (-1, b"GGUF"),  # one byte short
    (+1, b"GGUF"),  # one byte over
    (0, b"GGML"),  # the right size, the wrong magic
    (0, b"\x00\x00\x00\x00"),
    (0, b"<htm"),  # an HTML error page saved under the model's name
])
def test_damaged_model_is_reported(fake_resources: Path, size_delta: int, head: bytes) -> None:
    size = bundled.manifest().size + size_delta
    fake_model(fake_resources, size, head)
    with pytest.raises(bundled.BundledModelError) as info:
        bundled.locate()
    text = str(info.value)
    assert "damaged" in text
    assert f"{size:,}" in text
    assert "set-up" in text


def test_truncated_model_is_damaged(fake_resources: Path) -> None:
    path = fake_resources / "models" / bundled.manifest().file
    path.write_bytes(b"GG")  # shorter than the magic itself
    with pytest.raises(bundled.BundledModelError, match="damaged"):
        bundled.locate()


def test_wrong_bytes_of_the_right_size_fail_the_checksum(fake_resources: Path) -> None:
    fake_model(fake_resources, bundled.manifest().size, bundled.GGUF_MAGIC)
    # The quick start-up check cannot tell; the full check can.
    assert bundled.locate().file == bundled.manifest().file
    with pytest.raises(bundled.BundledModelError) as info:
        bundled.locate(verify_hash=True)
    assert "checksum" in str(info.value)
    assert "set-up" in str(info.value)


def test_manifest_defaults_for_optional_fields(fake_resources: Path) -> None:
    data = json.loads((fake_resources / "bundled-model.json").read_text(encoding="utf-8"))
    del data["chat_format"], data["context_length"]
    (fake_resources / "bundled-model.json").write_text(json.dumps(data), encoding="utf-8")
    m = bundled.manifest()
    assert (m.chat_format, m.context_length) == ("chatml", 2048)




def test_the_manifest_is_read_again_when_its_file_changes(fake_resources: Path) -> None:
    """Read once while the file stays the same; a changed or replaced file is read again."""
    first = bundled.manifest()
    assert bundled.manifest() is first  # not read again
    manifest_file = fake_resources / "bundled-model.json"
    data = json.loads(manifest_file.read_text(encoding="utf-8"))
    data["name"] = "Renamed in place"
    manifest_file.write_text(json.dumps(data), encoding="utf-8")
    assert bundled.manifest().name == "Renamed in place"
    data["context_length"] = 512
    replacement = fake_resources / "new.json"
    replacement.write_text(json.dumps(data), encoding="utf-8")
    replacement.replace(manifest_file)
    assert bundled.manifest().context_length == 512
    manifest_file.unlink()
    with pytest.raises(FileNotFoundError):
        bundled.manifest()
