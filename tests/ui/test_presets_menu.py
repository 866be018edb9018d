"""Presets in the window: applied to a chat from its settings panel (what the next
request uses), saved from a chat's settings, renamed and deleted; a default preset for
new chats from Preferences. The request a preset shapes is checked on
FakeInferenceService; that the same seed gives the same reply, through the real model."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.presets import BUILTIN_PRESETS, PresetBook
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.operations import Changes
from llamadesk.ui.presets_menu import CUSTOM

FAKE_WAIT_MS = 10_000
WAIT_MS = 180_000


def send(qtbot: QtBot, window: MainWindow, text: str, timeout: int = FAKE_WAIT_MS) -> None:
    with qtbot.waitSignal(window.controller.reply_finished, timeout=timeout):
        qtbot.keyClicks(window.chat.composer, text)
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)


def choose(window: MainWindow, name: str) -> None:
    """Pick a preset in the settings panel's list, as a user does."""
    combo = window.chat.settings_panel.presets.combo
    index = combo.findData(name)
    assert index >= 0, f"{name} is listed"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def test_a_preset_applied_to_a_chat_is_what_the_next_request_uses(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    panel = window.chat.settings_panel
    precise = next(p for p in BUILTIN_PRESETS if p.name == "Precise")
    assert panel.presets.combo.currentText() == CUSTOM, "the test's settings are no preset"
    choose(window, "Precise")
    conversation = window.current_conversation()
    assert conversation.system_prompt == precise.system_prompt, "stored at once"
    assert conversation.params == replace(precise.params, n_ctx=SHORT.n_ctx), \
        "the chat keeps its context length"
    send(qtbot, window, "How far is the Moon?")
    request, _model = fake_of(window).requests[-1]
    assert request.system_prompt == precise.system_prompt
    assert request.params.temperature == pytest.approx(precise.params.temperature)
    assert request.params.top_k == precise.params.top_k
    assert request.params.n_ctx == SHORT.n_ctx
    # Editing a value makes the settings "Custom" again.
    panel.temperature.setValue(1.3)
    panel.flush()
    assert panel.presets.combo.currentText() == CUSTOM


def test_save_rename_and_delete_a_preset_from_the_panel(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    window = fake_window()
    chooser = window.chat.settings_panel.presets
    window.chat.settings_panel.system_prompt.setPlainText("Answer in haiku.")
    window.chat.settings_panel.seed.setValue(77)
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("Haiku", True))
    saved = chooser.save_as()
    assert saved is not None and saved.system_prompt == "Answer in haiku."
    assert saved.params.seed == 77
    assert chooser.combo.currentData() == "Haiku", "the chat's settings are that preset now"
    assert PresetBook(app_paths().config_dir / "presets.json").get("Haiku") is not None

    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("Haiku only", True))
    assert chooser.rename() is not None
    assert chooser.combo.currentData() == "Haiku only"
    assert window.ctx.presets.get("Haiku") is None

    # A built-in's name is refused, with the reason in the banner.
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("Creative", True))
    assert chooser.save_as() is None
    assert "built-in" in window.chat.banner.label.text()

    monkeypatch.setattr(QMessageBox, "question",
                        lambda *_a, **_k: QMessageBox.StandardButton.Yes)
    assert chooser.delete()
    assert window.ctx.presets.get("Haiku only") is None
    assert chooser.combo.currentText() == CUSTOM
    # Built-ins cannot be renamed or deleted.
    choose(window, "Balanced")
    assert chooser.rename("Mine") is None and not chooser.delete(ask=False)


def record_changes(window: MainWindow) -> list[tuple[Changes, object]]:
    seen: list[tuple[Changes, object]] = []
    window.ctx.operations.changed.connect(lambda changes, who: seen.append((changes, who)))
    return seen


def test_a_saved_preset_is_an_operation_announced_to_the_views(
        fake_window: WindowFactory) -> None:
    window = fake_window()
    chooser = window.chat.settings_panel.presets
    seen = record_changes(window)
    window.chat.settings_panel.system_prompt.setPlainText("Answer in one line.")
    saved = chooser.save_as("One line")
    assert saved is not None
    assert seen == [(Changes(presets=True), chooser)], "announced once, with who asked"
    assert chooser.combo.findData("One line") >= 0, "listed again on the announcement"
    assert PresetBook(app_paths().config_dir / "presets.json").get("One line") == saved
    # A preset change made elsewhere (here: the default, from Preferences) reaches the
    # chooser through the same event.
    window.ctx.operations.run(lambda: window.ctx.presets.rename("One line", "Terse"),
                              Changes(presets=True))
    assert chooser.combo.findData("Terse") >= 0 and chooser.combo.findData("One line") < 0


def test_a_refused_preset_save_is_a_banner_and_loses_nothing(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    window = fake_window()
    chooser = window.chat.settings_panel.presets
    assert chooser.save_as("Kept") is not None
    presets_file = app_paths().config_dir / "presets.json"
    on_disk = presets_file.read_bytes()
    seen = record_changes(window)
    # A folder where the atomic write's temporary file goes: the write is refused (as a
    # read-only or full disk would refuse it; the tests run as a user chmod cannot stop).
    presets_file.with_name("presets.json.tmp").mkdir()
    window.chat.settings_panel.system_prompt.setPlainText("Never stored.")
    assert chooser.save_as("Lost") is None
    assert window.chat.banner.isVisible()
    text = window.chat.banner.label.text()
    assert text.startswith("The presets could not be saved to ") and str(presets_file) in text
    assert seen == [], "nothing changed, so nothing is announced"
    assert presets_file.read_bytes() == on_disk, "the file is as it was"
    assert window.ctx.presets.get("Lost") is None, "nor does the book pretend otherwise"
    assert window.ctx.presets.get("Kept") is not None
    assert chooser.combo.findData("Lost") < 0 and chooser.combo.findData("Kept") >= 0
    # A default preset chosen in Preferences and refused is a banner too, and the
    # settings saved beside it are saved all the same.
    from llamadesk.ui import preferences

    def accept(dialog: preferences.PreferencesDialog) -> int:
        box = dialog.default_preset_box
        box.setCurrentIndex(box.findData("Kept"))
        dialog.system_prompt.setPlainText("Be brief.")
        return 1

    window.chat.banner.hide()
    monkeypatch.setattr(preferences.PreferencesDialog, "exec", accept)
    with qtbot.waitSignal(window.ctx.operations.changed):  # the settings, off this thread
        window.show_preferences()
    assert window.chat.banner.isVisible()
    assert window.chat.banner.label.text().startswith("The presets could not be saved")
    assert window.ctx.presets.default_name is None
    assert presets_file.read_bytes() == on_disk
    assert window.ctx.settings.current.default_system_prompt == "Be brief."
    assert [c for c, _who in seen if c.presets] == []


def test_the_default_preset_and_defaults_from_preferences_shape_new_chats(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from llamadesk.ui import preferences

    window = fake_window()
    shown: list[preferences.PreferencesDialog] = []

    def accept(dialog: preferences.PreferencesDialog) -> int:
        shown.append(dialog)
        dialog.system_prompt.setPlainText("Be brief.")
        dialog.sampling.temperature.setValue(0.4)
        dialog.sampling.n_ctx.setValue(1024)
        return 1

    monkeypatch.setattr(preferences.PreferencesDialog, "exec", accept)
    with qtbot.waitSignal(window.ctx.operations.changed):  # saved off the GUI thread
        window.show_preferences()
    settings = window.ctx.settings.current
    assert settings.default_system_prompt == "Be brief."
    assert settings.defaults.temperature == pytest.approx(0.4)
    window.new_conversation()
    conversation = window.current_conversation()
    assert conversation.system_prompt == "Be brief."
    assert conversation.params.temperature == pytest.approx(0.4)

    def pick_default(dialog: preferences.PreferencesDialog) -> int:
        box = dialog.default_preset_box
        box.setCurrentIndex(box.findData("Llama 2 Chat"))
        return 1

    monkeypatch.setattr(preferences.PreferencesDialog, "exec", pick_default)
    with qtbot.waitSignal(window.ctx.operations.changed):
        window.show_preferences()
    assert window.ctx.presets.default_name == "Llama 2 Chat"
    window.new_conversation()
    llama2 = window.ctx.presets.get("Llama 2 Chat")
    conversation = window.current_conversation()
    assert conversation.system_prompt == llama2.system_prompt
    assert conversation.params == replace(llama2.params, n_ctx=1024)
    send(qtbot, window, "Hello")
    request, _model = fake_of(window).requests[-1]
    assert request.system_prompt == llama2.system_prompt
    assert PresetBook(app_paths().config_dir / "presets.json").default_name == "Llama 2 Chat"


def test_a_seeded_preset_gives_the_same_reply_every_time(
        qtbot: QtBot, real_window: WindowFactory) -> None:
    window = real_window()
    seeded = SamplingParams(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0,
                            repeat_penalty=1.0, max_tokens=24, seed=4242)
    window.ctx.presets.save("Seeded", "You are a storyteller.", seeded)
    window.chat.settings_panel.presets.refresh()
    choose(window, "Seeded")
    send(qtbot, window, "Begin a story about a fox.", WAIT_MS)
    first = window.store.messages(window.current_id)[-1]
    replies = [first]
    for _ in range(2):
        with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
            window.chat.regenerate(first.id)
        replies.append(done.args[1])
    assert all(r.role == Role.ASSISTANT and r.content for r in replies)
    assert replies[1].content == replies[0].content == replies[2].content, \
        "the same seed writes the same reply"
    assert len({r.id for r in replies}) == 3, "each regeneration is a version of its own"
    assert window.store.get_conversation(window.current_id).params.seed == 4242
