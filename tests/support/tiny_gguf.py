"""Small but valid GGUF files (written with the ``gguf`` package) and a resources folder
whose "bundled model" is one, for tests that need model files but not a model's
answers (FakeInferenceService answers instead)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gguf
import numpy as np

from llamadesk.core.paths import resources_dir


def write_tiny_gguf(path: Path, name: str = "Tiny test model", seed: int = 0,
                    context_length: int = 8192) -> Path:
    """A valid two-layer llama-shaped GGUF of a few kilobytes; ``seed`` changes its
    weights, so two files are never duplicates of each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_context_length(context_length)
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_tensor("token_embd.weight",
                      np.full((16, 64), seed + 1, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tiny_resources(folder: Path) -> Path:
    """A copy of the app's resources whose bundled model is a tiny GGUF (the manifest's
    and the catalog's size and checksum match it, so the app's own checks pass)."""
    source = resources_dir()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "catalog.schema.json", folder / "catalog.schema.json")
    manifest = json.loads((source / "bundled-model.json").read_text(encoding="utf-8"))
    model = write_tiny_gguf(folder / "models" / manifest["file"], manifest["name"])
    data = model.read_bytes()
    manifest.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (folder / "bundled-model.json").write_text(json.dumps(manifest), encoding="utf-8")
    # The catalog's entry for the bundled model must agree with the manifest.
    catalog = json.loads((source / "catalog.json").read_text(encoding="utf-8"))
    for entry in catalog["models"]:
        for file in entry["files"] if entry.get("bundled") else ():
            if file["file"] == manifest["file"]:
                file["size"] = len(data)
    (folder / "catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
    return folder
