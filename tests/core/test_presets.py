"""Presets: the built-ins, the user's own in the config folder, the default for new
chats, and a damaged file that loses nothing."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.presets import (
    BUILTIN_PRESETS,
    PRESETS_FILE,
    PresetBook,
    PresetError,
    PresetSaveError,
    preset_book,
)
from llamadesk.core.settings import AppSettings

# Meta's reference text (llama/generation.py, meta-llama/llama at the Llama 2 release),
# copied here independently of the app's constant.
META_DEFAULT_SYSTEM_PROMPT = """\
You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, \
while being safe.  Your answers should not include any harmful, unethical, racist, sexist, \
toxic, dangerous, or illegal content. Please ensure that your responses are socially \
unbiased and positive in nature.

If a question does not make any sense, or is not factually coherent, explain why instead of \
answering something not correct. If you don't know the answer to a question, please don't \
share false information."""

MINE = SamplingParams(temperature=0.3, top_p=0.8, top_k=12, min_p=0.0, repeat_penalty=1.2,
                      max_tokens=200, n_ctx=8192, seed=99)


@pytest.fixture
def book(tmp_path: Path) -> PresetBook:
    return preset_book(tmp_path / "config")


def test_built_ins(book: PresetBook) -> None:
    assert [p.name for p in book.presets()] == ["Balanced", "Precise", "Creative",
                                                 "Llama 2 Chat"]
    assert all(p.builtin for p in BUILTIN_PRESETS)
    balanced = book.get("balanced")
    assert balanced is not None
    assert balanced.params == SamplingParams(), "Balanced is today's defaults"
    assert balanced.system_prompt == AppSettings().default_system_prompt
    llama = book.get("Llama 2 Chat")
    assert llama is not None and llama.system_prompt == META_DEFAULT_SYSTEM_PROMPT
    assert (llama.params.temperature, llama.params.top_p) == (0.6, 0.9)
    precise, creative = book.get("Precise"), book.get("Creative")
    assert precise is not None and creative is not None
    assert precise.params.temperature < balanced.params.temperature < creative.params.temperature
    for preset in BUILTIN_PRESETS:
        assert preset.params == preset.params.validated(), f"{preset.name} is in range"
    assert not (book.path.parent / PRESETS_FILE).exists(), "nothing written until a change"


def test_save_rename_delete_persist(book: PresetBook) -> None:
    saved = book.save("  Short   answers ", "Be terse.", MINE)
    assert saved.name == "Short answers" and not saved.builtin
    book.save("Another", "", SamplingParams())
    again = PresetBook(book.path)
    assert [p.name for p in again.presets()][4:] == ["Another", "Short answers"]
    assert again.get("short answers") == saved

    again.rename("Short answers", "Terse")
    again.delete("Another")
    third = PresetBook(book.path)
    assert [p.name for p in third.presets()][4:] == ["Terse"]
    terse = third.get("Terse")
    assert terse is not None and terse.params == MINE and terse.system_prompt == "Be terse."
    assert list(book.path.parent.iterdir()) == [book.path], "no temporary file left"


def test_saving_over_a_name_needs_overwrite(book: PresetBook) -> None:
    book.save("Mine", "a", MINE)
    with pytest.raises(PresetError, match="already a preset called 'Mine'"):
        book.save("MINE", "b", MINE)
    book.save("mine", "b", replace(MINE, seed=5), overwrite=True)
    preset = PresetBook(book.path).get("Mine")
    assert preset is not None and preset.system_prompt == "b" and preset.params.seed == 5
    assert len(book.presets()) == 5


def test_built_ins_cannot_be_changed(book: PresetBook) -> None:
    with pytest.raises(PresetError, match="built in and cannot be deleted"):
        book.delete("Balanced")
    with pytest.raises(PresetError, match="built in and cannot be renamed"):
        book.rename("llama 2 chat", "Mine")
    with pytest.raises(PresetError, match="built-in preset"):
        book.save("precise", "x", MINE, overwrite=True)
    book.save("Mine", "x", MINE)
    with pytest.raises(PresetError, match="already a preset called 'Creative'"):
        book.rename("Mine", "creative")
    with pytest.raises(PresetError, match="no preset called"):
        book.delete("Nope")
    for blank in ("", "   "):
        with pytest.raises(PresetError, match="needs a name"):
            book.save(blank, "x", MINE)
    with pytest.raises(PresetError, match="at most 60"):
        book.save("x" * 61, "x", MINE)
    assert [p.name for p in PresetBook(book.path).presets()][4:] == ["Mine"]


def test_a_refused_write_changes_neither_the_file_nor_the_book(book: PresetBook) -> None:
    book.save("Mine", "Be brief.", SamplingParams(temperature=0.3))
    book.set_default("Mine")
    on_disk = book.path.read_bytes()
    book.path.with_name(book.path.name + ".tmp").mkdir()  # the temp file cannot be made
    attempts = [lambda: book.save("Other", "", SamplingParams()),
                lambda: book.save("Mine", "Changed.", SamplingParams(), overwrite=True),
                lambda: book.rename("Mine", "Renamed"), lambda: book.delete("Mine"),
                lambda: book.set_default(None)]
    for attempt in attempts:
        with pytest.raises(PresetSaveError, match=r"^The presets could not be saved to .*\.$"):
            attempt()
    assert book.path.read_bytes() == on_disk
    assert [p.name for p in book.presets() if not p.builtin] == ["Mine"]
    mine = book.get("Mine")
    assert mine is not None and mine.system_prompt == "Be brief."
    assert book.default_name == "Mine"


def test_the_default_preset_shapes_new_chats(book: PresetBook) -> None:
    settings = AppSettings(defaults=SamplingParams(n_ctx=3072, temperature=0.5),
                           default_system_prompt="From Preferences.")
    assert book.default_name is None
    assert book.new_chat_settings(settings) == ("From Preferences.", settings.defaults)

    book.save("Mine", "Be terse.", MINE)
    book.set_default("mine")
    prompt, params = PresetBook(book.path).new_chat_settings(settings)
    assert prompt == "Be terse."
    assert params == replace(MINE, n_ctx=3072), "the context length stays Preferences'"

    book.rename("Mine", "Terse")
    assert PresetBook(book.path).default_name == "Terse", "the default follows a rename"
    book.delete("Terse")
    assert PresetBook(book.path).default_name is None
    book.set_default("Llama 2 Chat")
    assert PresetBook(book.path).new_chat_settings(settings)[0] == META_DEFAULT_SYSTEM_PROMPT
    with pytest.raises(PresetError, match="no preset called"):
        book.set_default("Gone")


def test_applying_a_preset_keeps_the_chats_context_length() -> None:
    creative = next(p for p in BUILTIN_PRESETS if p.name == "Creative")
    applied = creative.applied_to(SamplingParams(n_ctx=16384, temperature=0.1, seed=3))
    assert applied == replace(creative.params, n_ctx=16384)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"presets": 5}',
                                     '{"format_version": 9, "presets": []}', "\udcff"])
def test_a_damaged_file_gives_the_built_ins_and_is_kept_aside(
        book: PresetBook, content: str, caplog: pytest.LogCaptureFixture) -> None:
    book.path.parent.mkdir(parents=True)
    book.path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with caplog.at_level(logging.WARNING, logger="llamadesk.core.presets"):
        damaged = PresetBook(book.path)
    assert [p.name for p in damaged.presets()] == [p.name for p in BUILTIN_PRESETS]
    assert "using the built-in presets" in caplog.text
    damaged.save("New", "x", MINE)
    kept = book.path.with_name(PRESETS_FILE + ".unreadable")
    assert kept.read_bytes() == content.encode("utf-8", "surrogateescape")
    assert [p.name for p in PresetBook(book.path).presets()][4:] == ["New"]


def test_one_bad_entry_is_skipped_and_the_others_kept(
        book: PresetBook, caplog: pytest.LogCaptureFixture) -> None:
    book.path.parent.mkdir(parents=True)
    good = {"name": "Good", "system_prompt": "ok", "params": MINE.to_dict(),
            "future_key": [1, 2]}
    book.path.write_text(json.dumps({"format_version": 1, "default": "Good", "presets": [
        good,
        {"name": "Bad", "system_prompt": "x", "params": {"temperature": "hot"}},
        {"name": "Balanced", "system_prompt": "x", "params": {}},
        "not an object"]}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="llamadesk.core.presets"):
        loaded = PresetBook(book.path)
    assert [p.name for p in loaded.presets()][4:] == ["Good"]
    assert loaded.default_name == "Good"
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 3
    preset = loaded.get("Good")
    assert preset is not None and preset.params == MINE
