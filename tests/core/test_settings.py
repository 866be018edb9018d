"""App settings: the JSON file, defaults, damage, hardware settings."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import psutil
import pytest

from llamadesk.core import paths
from llamadesk.core import settings as settings_module
from llamadesk.core.conversation import SamplingParams
from llamadesk.core.settings import (
    THREADS_ENV,
    AppearanceSettings,
    AppSettings,
    HardwareSettings,
    capped_threads,
    load_settings,
    save_settings,
    with_hardware,
)

ROOT = Path(__file__).resolve().parents[2]
REAL_RESOURCES = ROOT / "resources"

# -- settings -------------------------------------------------------------------------------


@pytest.fixture
def settings_file(home: Path) -> Path:
    return paths.app_paths().settings_file


def test_defaults() -> None:
    s = AppSettings()
    assert s.hardware == HardwareSettings(n_threads=0, gpu_layers="auto", flash_attn=False,
                                          n_batch=512, kv_cache_type="q8_0")
    assert s.defaults == SamplingParams()
    assert s.default_system_prompt == "You are a helpful assistant."
    assert s.model_id is None


def test_missing_file_gives_defaults(settings_file: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    assert not settings_file.exists()
    with caplog.at_level(logging.WARNING):
        assert load_settings(settings_file) == AppSettings()
    assert not caplog.records  # a first start is not worth a warning


def test_round_trip(settings_file: Path) -> None:
    original = AppSettings(
        hardware=HardwareSettings(n_threads=3, gpu_layers="12", flash_attn=True, n_batch=256),
        defaults=SamplingParams(temperature=0.25, top_p=0.8, top_k=20, min_p=0.02,
                                repeat_penalty=1.05, max_tokens=300, n_ctx=8192, seed=42),
        default_system_prompt="Answer in French.\nBriefly.",
        model_id="bartowski/Some-Model-GGUF:Some-Model-Q4_K_M.gguf",
    )
    save_settings(settings_file, original)  # the config folder does not exist yet
    assert settings_file.is_file()
    loaded = load_settings(settings_file)
    assert loaded == original
    assert loaded != AppSettings()


def test_saved_file_is_plain_json(settings_file: Path) -> None:
    save_settings(settings_file, AppSettings(model_id="x"))
    data = json.loads(settings_file.read_text(encoding="utf-8"))
    assert data["model_id"] == "x"
    assert data["hardware"]["gpu_layers"] == "auto"
    assert data["defaults"]["n_ctx"] == 4096


def test_save_leaves_no_temporary_file(settings_file: Path) -> None:
    save_settings(settings_file, AppSettings())
    save_settings(settings_file, AppSettings(model_id="again"))
    assert sorted(p.name for p in settings_file.parent.iterdir()) == [settings_file.name]
    assert load_settings(settings_file).model_id == "again"


def test_failed_save_keeps_the_old_file(
        settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(settings_file, AppSettings(model_id="old"))
    before = settings_file.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(settings_module.os, "replace", crash)
        with pytest.raises(OSError, match="simulated"):
            save_settings(settings_file, AppSettings(model_id="new"))
    assert settings_file.read_bytes() == before
    assert load_settings(settings_file).model_id == "old"


def test_unknown_keys_are_ignored(settings_file: Path) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(json.dumps({
        "colour": "purple",
        "hardware": {"n_threads": 6, "turbo": True},
        "defaults": {"temperature": 0.1, "mirostat": 2},
        "model_id": "m",
    }), encoding="utf-8")
    loaded = load_settings(settings_file)
    assert loaded == AppSettings(hardware=HardwareSettings(n_threads=6),
                                 defaults=SamplingParams(temperature=0.1), model_id="m")


def test_missing_keys_default(settings_file: Path) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text('{"hardware": {"flash_attn": true}}', encoding="utf-8")
    assert load_settings(settings_file) == AppSettings(
        hardware=HardwareSettings(flash_attn=True))


def test_appearance_round_trips_and_an_older_file_without_it_loads(
        settings_file: Path) -> None:
    look = AppSettings(appearance=AppearanceSettings(theme="dark", font_size=14))
    save_settings(settings_file, look)
    assert load_settings(settings_file).appearance == AppearanceSettings("dark", 14)
    # A file written before the appearance settings existed.
    settings_file.write_text('{"model_id": "m", "default_system_prompt": "Hi."}',
                             encoding="utf-8")
    loaded = load_settings(settings_file)
    assert loaded.appearance == AppearanceSettings(theme="system", font_size=0)
    assert loaded.model_id == "m" and loaded.default_system_prompt == "Hi."


@pytest.mark.parametrize(("stored", "theme", "size"), [
    ({"theme": "purple", "font_size": 12}, "system", 12),
    ({"theme": "light", "font_size": 2}, "light", 7),
    ({"theme": "dark", "font_size": 500}, "dark", 40),
    ({"font_size": -3}, "system", 0),
    ({"font_size": "big"}, "system", 0),
])
def test_appearance_values_are_checked_on_load(
        settings_file: Path, stored: dict[str, object], theme: str, size: int) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(json.dumps({"appearance": stored}), encoding="utf-8")
    assert load_settings(settings_file).appearance == AppearanceSettings(theme, size)


def test_out_of_range_defaults_are_clamped_on_load(settings_file: Path) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text('{"defaults": {"temperature": 99, "top_p": -1, "n_ctx": 10}}',
                             encoding="utf-8")
    defaults = load_settings(settings_file).defaults
    assert (defaults.temperature, defaults.top_p, defaults.n_ctx) == (5.0, 0.0, 256)


@pytest.mark.parametrize("content", [
    b"{not json",
    b"",
    b"\xff\xfe\x00garbage",  # not UTF-8
    b"[]",
    b"null",
    b"42",
    b'"a string"',
    b'{"hardware": "fast"}',
    b'{"hardware": [1, 2]}',
    b'{"defaults": [1]}',
    b'{"defaults": {"temperature": "hot"}}',
])
def test_damaged_file_gives_defaults_and_a_warning(
        settings_file: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="llamadesk.core.settings"):
        assert load_settings(settings_file) == AppSettings()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(settings_file) in warnings[0].getMessage()
    assert settings_file.read_bytes() == content  # not overwritten behind the user's back


def test_unreadable_path_gives_defaults(settings_file: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    settings_file.mkdir(parents=True)  # a folder where the file should be
    with caplog.at_level(logging.WARNING, logger="llamadesk.core.settings"):
        assert load_settings(settings_file) == AppSettings()
    assert caplog.records


def test_with_hardware_changes_only_hardware() -> None:
    base = AppSettings(model_id="keep")
    changed = with_hardware(base, n_threads=2, gpu_layers="none")
    assert changed.hardware == HardwareSettings(n_threads=2, gpu_layers="none")
    assert changed.model_id == "keep"
    assert changed.defaults == base.defaults
    assert base.hardware == HardwareSettings()  # the original is untouched


# -- hardware settings ------------------------------------------------------------------------


@pytest.mark.parametrize("n_threads", [0, -1, -8])
def test_threads_auto_is_one_per_physical_core(
        n_threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)  # the suite sets it (tests/conftest.py)
    monkeypatch.setattr(settings_module, "physical_cores", lambda: 7)
    assert HardwareSettings(n_threads=n_threads).threads() == 7


def test_threads_auto_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    expected = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    assert HardwareSettings().threads() == expected >= 1


@pytest.mark.parametrize(("value", "expected"), [("1", 1), (" 3 ", 3), ("0", 7), ("-2", 7),
                                                 ("two", 7), ("", 7), ("16", 7)])
def test_threads_auto_is_capped_by_the_environment(
        value: str, expected: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, value)
    monkeypatch.setattr(settings_module, "physical_cores", lambda: 7)
    assert HardwareSettings().threads() == expected
    assert HardwareSettings(n_threads=5).threads() == 5, "a chosen count wins"


@pytest.mark.parametrize("n_threads", [1, 3, 64])
def test_threads_explicit(n_threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "physical_cores", lambda: 7)
    assert HardwareSettings(n_threads=n_threads).threads() == n_threads


@pytest.mark.parametrize(("gpu_layers", "with_gpu"), [
    ("auto", -1),
    ("all", -1),
    ("none", 0),
    ("0", 0),
    ("1", 1),
    ("33", 33),
    (" 12 ", 12),
    ("-5", 0),
    ("garbage", 0),
    ("", 0),
    ("1.5", 0),
])
def test_n_gpu_layers(gpu_layers: str, with_gpu: int) -> None:
    hw = HardwareSettings(gpu_layers=gpu_layers)
    assert hw.n_gpu_layers(gpu_offload_supported=True) == with_gpu
    assert hw.n_gpu_layers(gpu_offload_supported=False) == 0




@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("4", 2), ("", 2), ("x", 2)])
def test_a_helper_context_is_capped_by_the_environment(
        value: str, expected: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, value)
    assert capped_threads(2) == expected
