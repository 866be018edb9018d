"""A folder whose name is not ASCII, with a copy of the app's resources (the bundled model
included) inside it: where a per-user install lands in a profile like ``C:\\Users\\Željko``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FOLDER = "Željko Дмитрий 田中 folder"
ROOT = Path(__file__).resolve().parents[2]


def odd_folder(base: Path) -> Path:
    """``base/Željko Дмитрий 田中 folder``, created."""
    folder = base / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resources_under(folder: Path) -> Path:
    """A copy of resources/ under ``folder`` (the model hard-linked where the filesystem
    allows, else copied), for ``LLAMADESK_RESOURCES``."""
    source = ROOT / "resources"
    target = folder / "LlamaDesk" / "resources"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("models"))
    (target / "models").mkdir()
    for model in (source / "models").glob("*.gguf"):
        try:
            os.link(model, target / "models" / model.name)
        except OSError:
            shutil.copyfile(model, target / "models" / model.name)
    return target
