"""About / diagnostics (Preferences: ``preferences.py``)."""

from __future__ import annotations

import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from llamadesk import APP_NAME, __version__
from llamadesk.core.hardware import probe
from llamadesk.core.paths import AppPaths


def diagnostics_text(paths: AppPaths, model_line: str) -> str:
    """What support needs to know: versions, build features, hardware, folders."""
    # Imported here: llama.cpp loads on the inference thread, not at start-up.
    from llamadesk.services.llama_runtime import (
        llama_cpp_version,
        supports_gpu_offload,
        system_info,
    )

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
