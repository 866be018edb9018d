"""Preferences (hardware settings) and About / diagnostics."""

from __future__ import annotations

import platform
from dataclasses import replace

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from llamadesk import APP_NAME, __version__
from llamadesk.core.hardware import probe
from llamadesk.core.paths import AppPaths
from llamadesk.core.settings import (
    GPU_LAYERS_ALL,
    GPU_LAYERS_AUTO,
    GPU_LAYERS_NONE,
    AppSettings,
    with_hardware,
)
from llamadesk.services.engine import llama_cpp_version, supports_gpu_offload, system_info

NO_GPU_REASON = ("This build of llama.cpp runs on the CPU only. To offload layers to a GPU, "
                 "rebuild it with a GPU backend (see docs/packaging.md: CUDA, Metal, Vulkan).")


class PreferencesDialog(QDialog):
    """App-wide hardware settings: threads, GPU offload, flash attention, context."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME} preferences")
        self._settings = settings
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
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(256, 131072)
        self.n_ctx.setSingleStep(256)
        self.n_ctx.setValue(settings.defaults.n_ctx)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(self._form())
        note = QLabel("Changes apply the next time a model loads.")
        note.setEnabled(False)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self._sync_gpu()

    def _form(self) -> QFormLayout:
        form = QFormLayout()
        form.addRow("CPU threads", self.threads)
        form.addRow("GPU offload", self.gpu_mode)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("", self.gpu_reason)
        form.addRow("", self.flash_attn)
        form.addRow("", self.compact_cache)
        form.addRow("Default context length", self.n_ctx)
        return form

    def _sync_gpu(self) -> None:
        self.gpu_mode.setEnabled(self.gpu_supported)
        self.gpu_layers.setEnabled(self.gpu_supported and self.gpu_mode.currentData() == "n")

    def result_settings(self) -> AppSettings:
        """The settings as edited."""
        mode = self.gpu_mode.currentData()
        gpu = str(self.gpu_layers.value()) if mode == "n" else str(mode)
        settings = with_hardware(self._settings, n_threads=self.threads.value(),
                                 gpu_layers=gpu, flash_attn=self.flash_attn.isChecked(),
                                 kv_cache_type="q8_0" if self.compact_cache.isChecked()
                                 else "f16")
        return replace(settings, defaults=replace(settings.defaults, n_ctx=self.n_ctx.value()))


def diagnostics_text(paths: AppPaths, model_line: str) -> str:
    """What support needs to know: versions, build features, hardware, folders."""
    hw = probe()
    gib = 1024**3
    lines = [
        f"{APP_NAME} {__version__}",
        f"Python {platform.python_version()} on {platform.platform()}",
        f"PySide6 {pyside_version}; llama-cpp-python {llama_cpp_version()}",
        f"CPU: {hw.cpu_name} ({hw.physical_cores} cores, {hw.logical_cores} threads)",
        f"RAM: {hw.total_ram / gib:.1f} GiB total, {hw.available_ram / gib:.1f} GiB free",
        f"GPU offload: {'supported' if supports_gpu_offload() else 'not in this build'}",
        f"llama.cpp features: {system_info()}",
        f"Model: {model_line}",
        "",
        f"Data: {paths.data_dir}",
        f"Models: {paths.models_dir}",
        f"Settings: {paths.config_dir}",
        f"Logs: {paths.log_dir}",
    ]
    return "\n".join(lines)


class AboutDialog(QDialog):
    """About the app, with diagnostics to copy into a bug report."""

    def __init__(self, paths: AppPaths, model_line: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        title = QLabel(f"<h2>{APP_NAME}</h2><p>Private, offline chat with local models. "
                       "Nothing leaves this machine unless you ask for a download.</p>")
        title.setWordWrap(True)
        self.details = QPlainTextEdit(diagnostics_text(paths, model_line))
        self.details.setReadOnly(True)
        self.details.setMinimumSize(560, 240)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(QLabel("Diagnostics (select and copy for a bug report):"))
        layout.addWidget(self.details)
        layout.addWidget(buttons, alignment=Qt.AlignmentFlag.AlignRight)
