"""Settings, sampling parameters, paths, the bundled model's checks, hardware probing and
logging set-up."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import platformdirs
import psutil
import pytest

from llamadesk.core import bundled, hardware, logs, paths
from llamadesk.core import settings as settings_module
from llamadesk.core.conversation import SamplingParams
from llamadesk.core.settings import (
    AppSettings,
    HardwareSettings,
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
    monkeypatch.setattr(settings_module, "physical_cores", lambda: 7)
    assert HardwareSettings(n_threads=n_threads).threads() == 7


def test_threads_auto_on_this_machine() -> None:
    expected = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    assert HardwareSettings().threads() == expected >= 1


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


# -- sampling parameters -----------------------------------------------------------------------


def test_sampling_validated_keeps_sane_values() -> None:
    params = SamplingParams(temperature=0.3, top_p=0.9, top_k=10, min_p=0.1,
                            repeat_penalty=1.2, max_tokens=100, n_ctx=2048, seed=5)
    assert params.validated() == params


@pytest.mark.parametrize(("field_name", "value", "expected"), [
    ("temperature", -1.0, 0.0),
    ("temperature", 9.0, 5.0),
    ("top_p", -0.5, 0.0),
    ("top_p", 1.5, 1.0),
    ("top_k", -3, 0),
    ("min_p", -0.1, 0.0),
    ("min_p", 2.0, 1.0),
    ("repeat_penalty", -1.0, 0.0),
    ("repeat_penalty", 50.0, 5.0),
    ("max_tokens", 0, 1),
    ("max_tokens", -10, 1),
    ("n_ctx", 16, 256),
    ("n_ctx", 1 << 30, 1 << 20),
    ("seed", -1, -1),
])
def test_sampling_validated_clamps(field_name: str, value: float, expected: float) -> None:
    params = SamplingParams(**{field_name: value}).validated()  # type: ignore[arg-type]
    assert getattr(params, field_name) == expected
    # Every other field keeps its default.
    for f in fields(SamplingParams):
        if f.name != field_name:
            assert getattr(params, f.name) == getattr(SamplingParams(), f.name)


def test_sampling_validated_converts_types() -> None:
    params = SamplingParams(temperature="0.5", top_k="12", seed=3.0).validated()  # type: ignore[arg-type]
    assert (params.temperature, params.top_k, params.seed) == (0.5, 12, 3)
    assert isinstance(params.top_k, int)
    assert isinstance(params.temperature, float)


def test_sampling_from_dict() -> None:
    assert SamplingParams.from_dict(None) == SamplingParams()
    assert SamplingParams.from_dict({}) == SamplingParams()
    assert SamplingParams.from_dict({"top_k": 5, "unknown": 1, "mirostat_tau": 5.0}) == \
        SamplingParams(top_k=5)
    full = SamplingParams(temperature=1.1, top_p=0.7, top_k=3, min_p=0.2,
                          repeat_penalty=1.0, max_tokens=9, n_ctx=1024, seed=77)
    assert SamplingParams.from_dict(full.to_dict()) == full
    assert SamplingParams.from_dict(json.loads(json.dumps(full.to_dict()))) == full


# -- paths ------------------------------------------------------------------------------------


def test_home_relocates_every_folder(home: Path) -> None:
    p = paths.app_paths()
    base = home.resolve()
    folders = [p.data_dir, p.config_dir, p.cache_dir, p.log_dir, p.models_dir]
    assert len(set(folders)) == len(folders)
    for folder in [*folders, p.database, p.settings_file, p.log_file, p.downloads_dir]:
        assert folder.is_relative_to(base), folder
    assert p.database.parent == p.data_dir
    assert p.settings_file.parent == p.config_dir
    assert p.log_file.parent == p.log_dir
    assert p.downloads_dir.parent == p.models_dir


def test_explicit_home_wins_over_the_environment(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "portable"
    p = paths.app_paths(other)
    assert p.data_dir.is_relative_to(other.resolve())
    assert not p.data_dir.is_relative_to(home.resolve())


def test_home_expands_the_user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv(paths.HOME_ENV, "~/portable")
    p = paths.app_paths()
    assert p.config_dir.is_relative_to((tmp_path / "user" / "portable").resolve())


def test_without_home_the_platform_folders_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.HOME_ENV)
    p = paths.app_paths()  # only computed: ensure() is not called on the real folders
    dirs = platformdirs.PlatformDirs(paths.APP_DIR_NAME, appauthor=False)
    assert p.data_dir == Path(dirs.user_data_dir)
    assert p.config_dir == Path(dirs.user_config_dir)
    assert p.cache_dir == Path(dirs.user_cache_dir)
    assert p.log_dir == Path(dirs.user_log_dir)
    assert p.models_dir == Path(dirs.user_data_dir) / "models"
    assert paths.APP_DIR_NAME in str(p.data_dir)


def test_empty_home_variable_means_platform_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.HOME_ENV, "")
    dirs = platformdirs.PlatformDirs(paths.APP_DIR_NAME, appauthor=False)
    assert paths.app_paths().config_dir == Path(dirs.user_config_dir)


def test_ensure_creates_the_folders(home: Path) -> None:
    p = paths.app_paths()
    assert not home.exists()
    assert p.ensure() is p
    for folder in (p.data_dir, p.config_dir, p.cache_dir, p.log_dir, p.models_dir):
        assert folder.is_dir()
    p.ensure()  # a second time is harmless
    assert not p.database.exists()  # folders only


def test_resources_dir_defaults_to_the_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.RESOURCES_ENV, raising=False)
    assert paths.resources_dir() == REAL_RESOURCES
    assert (paths.resources_dir() / "bundled-model.json").is_file()
    assert paths.bundled_models_dir() == REAL_RESOURCES / "models"


def test_resources_dir_honours_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.RESOURCES_ENV, str(tmp_path / "res"))
    assert paths.resources_dir() == tmp_path / "res"
    assert paths.bundled_models_dir() == tmp_path / "res" / "models"


def test_resources_dir_in_a_frozen_bundle(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.RESOURCES_ENV, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert paths.resources_dir() == tmp_path / "bundle" / "resources"


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


# -- hardware ---------------------------------------------------------------------------------


def test_probe_reports_this_machine() -> None:
    hw = hardware.probe()
    assert hw.cpu_name.strip()
    assert 1 <= hw.physical_cores <= hw.logical_cores
    assert hw.logical_cores == (psutil.cpu_count(logical=True) or 1)
    assert 0 < hw.available_ram <= hw.total_ram
    assert hw.total_ram == psutil.virtual_memory().total


def test_physical_cores_falls_back_when_psutil_cannot_tell(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware.psutil, "cpu_count", lambda logical=True: None)
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: 6)
    assert hardware.physical_cores() == 6
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: None)
    assert hardware.physical_cores() == 1


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def root_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The root logger, put back as it was afterwards (setup_logging changes it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # setup_logging may swap streams without a file descriptor; put them back too.
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, "_llamadesk", False)]


def test_setup_logging_writes_to_the_file(root_logger: logging.Logger, home: Path) -> None:
    log_file = paths.app_paths().log_file
    logs.setup_logging(log_file)
    logging.getLogger("llamadesk.test").info("hello from the test %d", 42)
    logging.getLogger("llamadesk.test").debug("too quiet to keep")
    for handler in ours(root_logger):
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    assert "hello from the test 42" in text
    assert "INFO" in text
    assert "llamadesk.test" in text
    assert "too quiet to keep" not in text


def test_setup_logging_twice_keeps_one_file_handler(
        root_logger: logging.Logger, tmp_path: Path) -> None:
    logs.setup_logging(tmp_path / "one" / "a.log")
    logs.setup_logging(tmp_path / "two" / "b.log", level=logging.DEBUG)
    handlers = ours(root_logger)
    assert len(handlers) == 1
    assert root_logger.level == logging.DEBUG
    logging.getLogger("llamadesk.test").debug("debug line")
    handlers[0].flush()
    assert "debug line" in (tmp_path / "two" / "b.log").read_text(encoding="utf-8")
    assert not (tmp_path / "one" / "a.log").exists()  # delay=True: never written


def test_setup_logging_console_adds_a_warning_handler(
        root_logger: logging.Logger, tmp_path: Path) -> None:
    logs.setup_logging(tmp_path / "c.log", console=True)
    handlers = ours(root_logger)
    assert len(handlers) == 2
    console = [h for h in handlers if type(h) is logging.StreamHandler]
    assert len(console) == 1
    assert console[0].level == logging.WARNING


def test_ensure_std_streams_replaces_missing_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    logs.ensure_std_streams()
    replaced = [sys.stdout, sys.stderr]
    try:
        for stream in replaced:
            assert stream is not None
            assert isinstance(stream.fileno(), int)
            os.close(os.dup(stream.fileno()))  # what llama-cpp-python does with it
            stream.write("discarded\n")
            stream.flush()
    finally:
        for stream in replaced:
            if stream is not None:
                stream.close()


def test_ensure_std_streams_replaces_streams_without_a_descriptor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    fake = io.StringIO()
    monkeypatch.setattr(sys, "stdout", fake)
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # put back even if it gets replaced
    logs.ensure_std_streams()
    replacement = sys.stdout
    try:
        assert replacement is not fake
        assert isinstance(replacement.fileno(), int)
    finally:
        replacement.close()


def test_ensure_std_streams_keeps_working_streams(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "out.txt", "w", encoding="utf-8") as out, \
            open(tmp_path / "err.txt", "w", encoding="utf-8") as err:
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        logs.ensure_std_streams()
        assert sys.stdout is out
        assert sys.stderr is err
