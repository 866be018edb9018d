"""Preferences: hardware, what new chats start with (a default preset, or a system
prompt and sampling settings), appearance (theme, text size), who may use the local
API, remote connections, and privacy (the chat database's passphrase)."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from llamadesk import APP_NAME
from llamadesk.core.hardware import probe
from llamadesk.core.paths import AppPaths
from llamadesk.core.presets import PresetBook
from llamadesk.core.secrets import ApiKeyStore
from llamadesk.core.settings import (
    GPU_LAYERS_ALL,
    GPU_LAYERS_AUTO,
    GPU_LAYERS_NONE,
    MAX_FONT_SIZE,
    THEME_DARK,
    THEME_LIGHT,
    THEME_SYSTEM,
    AppearanceSettings,
    AppSettings,
    with_hardware,
)
from llamadesk.services.remote_models import RemoteModelsService
from llamadesk.ui.connections_page import ConnectionsPage
from llamadesk.ui.local_api_page import LocalApiPage
from llamadesk.ui.operations import Operations
from llamadesk.ui.privacy_page import PrivacyPage
from llamadesk.ui.sampling_form import SamplingFields

NO_GPU_REASON = ("This build of llama.cpp runs on the CPU only. To offload layers to a GPU, "
                 "rebuild it with a GPU backend (see docs/packaging.md: CUDA, Metal, Vulkan).")
NO_DEFAULT_PRESET = "None: the settings below"


class PreferencesDialog(QDialog):
    """App-wide settings in tabs: Hardware (threads, GPU offload, flash attention, the
    context cache), New chats (default preset, system prompt, sampling, context length),
    Appearance (theme, text size), Local API (who may use it) and, with remote models,
    Connections (given the window's operations, which store its keys)."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None,
                 presets: PresetBook | None = None,
                 remote_models: RemoteModelsService | None = None,
                 api_keys: ApiKeyStore | None = None,
                 paths: AppPaths | None = None,
                 operations: Operations | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME} preferences")
        self._settings = settings
        self.tabs = QTabWidget()
        self.tabs.addTab(self._hardware_tab(settings), "&Hardware")
        self.tabs.addTab(self._new_chats_tab(settings, presets), "&New chats")
        self.tabs.addTab(self._appearance_tab(settings.appearance), "&Appearance")
        self.local_api_page = LocalApiPage(settings.local_api, api_keys)
        self.tabs.addTab(self.local_api_page, "&Local API")
        # The Connections page writes keys to the keychain, as window operations.
        self.connections_page = ConnectionsPage(
            settings.connections, remote_models, operations, settings.remote) \
            if remote_models is not None and operations is not None else None
        if self.connections_page is not None:
            self.tabs.addTab(self.connections_page, "&Connections")
        self.privacy_page = PrivacyPage(paths) if paths is not None else None
        if self.privacy_page is not None:
            self.tabs.addTab(self.privacy_page, "&Privacy")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self._sync_gpu()

    # -- the tabs ------------------------------------------------------------------------
    def _hardware_tab(self, settings: AppSettings) -> QWidget:
        hw = settings.hardware
        cores = probe().physical_cores
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText(f"automatic ({cores}, one per physical core)")
        self.threads.setValue(hw.n_threads)
        self.gpu_mode = QComboBox()
        self.gpu_mode.addItem("Automatic", GPU_LAYERS_AUTO)
        self.gpu_mode.addItem("All layers", GPU_LAYERS_ALL)
        self.gpu_mode.addItem("None (CPU only)", GPU_LAYERS_NONE)
        self.gpu_mode.addItem("A number of layers", "n")
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(1, 999)
        if hw.gpu_layers.isdigit():
            self.gpu_mode.setCurrentIndex(3)
            self.gpu_layers.setValue(int(hw.gpu_layers))
        else:
            self.gpu_mode.setCurrentIndex(max(self.gpu_mode.findData(hw.gpu_layers), 0))
        self.gpu_mode.currentIndexChanged.connect(self._sync_gpu)
        from llamadesk.services.fit_check import supports_gpu_offload

        self.gpu_supported = supports_gpu_offload()
        self.gpu_reason = QLabel("" if self.gpu_supported else NO_GPU_REASON)
        self.gpu_reason.setWordWrap(True)
        self.gpu_reason.setObjectName("gpuReason")
        self.flash_attn = QCheckBox("Use flash attention")
        self.flash_attn.setChecked(hw.flash_attn)
        self.compact_cache = QCheckBox("Compact context cache (8-bit)")
        self.compact_cache.setToolTip("Keeps the conversation's context in 8 bits instead "
                                      "of 16: a quarter less memory, or half with flash "
                                      "attention on.")
        self.compact_cache.setChecked(hw.kv_cache_type == "q8_0")
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("CPU threads", self.threads)
        form.addRow("GPU offload", self.gpu_mode)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("", self.gpu_reason)
        form.addRow("", self.flash_attn)
        form.addRow("", self.compact_cache)
        note = QLabel("Changes apply the next time a model loads.")
        note.setEnabled(False)
        form.addRow(note)
        return page

    def _new_chats_tab(self, settings: AppSettings, presets: PresetBook | None) -> QWidget:
        self.default_preset_box = QComboBox()
        self.default_preset_box.setAccessibleName("Default preset")
        self.default_preset_box.addItem(NO_DEFAULT_PRESET, None)
        for preset in presets.presets() if presets is not None else []:
            self.default_preset_box.addItem(preset.name, preset.name)
        if presets is not None and presets.default_name:
            self.default_preset_box.setCurrentIndex(
                max(self.default_preset_box.findData(presets.default_name), 0))
        self.default_preset_box.setEnabled(presets is not None)
        self.system_prompt = QPlainTextEdit(settings.default_system_prompt)
        self.system_prompt.setAccessibleName("Default system prompt")
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setMaximumHeight(100)
        self.sampling = SamplingFields(self)
        self.sampling.set_params(settings.defaults)
        self.n_ctx = self.sampling.n_ctx
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("Default preset", self.default_preset_box)
        note = QLabel("With a default preset, new chats take its system prompt and sampling "
                      "settings, and the context length below.")
        note.setWordWrap(True)
        note.setEnabled(False)
        form.addRow(note)
        form.addRow("System prompt", self.system_prompt)
        self.sampling.add_rows(form)
        return page

    def _appearance_tab(self, look: AppearanceSettings) -> QWidget:
        self.theme = QComboBox()
        self.theme.setAccessibleName("Theme")
        self.theme.addItem("Follow the system", THEME_SYSTEM)
        self.theme.addItem("Light", THEME_LIGHT)
        self.theme.addItem("Dark", THEME_DARK)
        self.theme.setCurrentIndex(max(self.theme.findData(look.theme), 0))
        self.font_size = QSpinBox()
        self.font_size.setAccessibleName("Chat text size")
        self.font_size.setRange(0, MAX_FONT_SIZE)
        self.font_size.setSuffix(" pt")
        self.font_size.setSpecialValueText("the system's size")
        self.font_size.setValue(look.font_size)
        self.font_size.setToolTip("Also Ctrl+= (bigger), Ctrl+- (smaller), Ctrl+0 (the "
                                  "system's size)")
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("Theme", self.theme)
        form.addRow("Chat text size", self.font_size)
        note = QLabel("In the chat: Ctrl+= bigger, Ctrl+- smaller, Ctrl+0 the system's size.")
        note.setWordWrap(True)
        note.setEnabled(False)
        form.addRow(note)
        return page

    def _sync_gpu(self) -> None:
        self.gpu_mode.setEnabled(self.gpu_supported)
        self.gpu_layers.setEnabled(self.gpu_supported and self.gpu_mode.currentData() == "n")

    # -- the result ------------------------------------------------------------------------
    def accept(self) -> None:
        """Close, unless a list on the Local API tab is not valid (it says why)."""
        if self.local_api_page.why_invalid() is not None:
            self.tabs.setCurrentWidget(self.local_api_page)
            return
        super().accept()

    def result_settings(self) -> AppSettings:
        """The settings as edited."""
        mode = self.gpu_mode.currentData()
        gpu = str(self.gpu_layers.value()) if mode == "n" else str(mode)
        settings = with_hardware(self._settings, n_threads=self.threads.value(),
                                 gpu_layers=gpu, flash_attn=self.flash_attn.isChecked(),
                                 kv_cache_type="q8_0" if self.compact_cache.isChecked()
                                 else "f16")
        look = AppearanceSettings(str(self.theme.currentData()), self.font_size.value())
        return replace(settings, defaults=self.sampling.params(),
                       default_system_prompt=self.system_prompt.toPlainText(),
                       appearance=look.validated(),
                       local_api=self.local_api_page.local_api(),
                       connections=(self.connections_page.connections()
                                    if self.connections_page else settings.connections))

    def default_preset(self) -> str | None:
        """The preset chosen for new chats (None: the settings of this tab)."""
        name = self.default_preset_box.currentData()
        return name if isinstance(name, str) else None
