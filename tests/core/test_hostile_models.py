"""A generated corpus of damaged and hostile model files, offered to import: each one is
imported or refused with a readable reason, and a refused one leaves nothing behind.

The corpus (tests/support/gguf_tools.py) is built from a tiny model llama.cpp really
loads: truncations at many offsets, bad magic and versions, absurd counts and lengths,
tensors past the end, byte flips in the header. tests/services/test_hostile_models.py
offers the same corpus to llama.cpp.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf_tools import tiny_model, write_corpus

from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import IMPORTED_DIR, ModelRegistry, RegistryError

# Damage the header check must refuse, whatever llama.cpp would do with it.
MUST_REFUSE = ("truncated at", "bad magic", "lower-case magic", "version", "tensor count",
               "metadata count",
               "key length", "unknown value type", "name length", "token list",
               "first token length", "alignment 3", "tensor dim 2**40", "tensor offset",
               "tensors overlap")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    return write_corpus(tiny_model(folder / "tiny.gguf"), folder / "damaged")


def test_the_corpus_is_broad(corpus: dict[str, Path]) -> None:
    names = " ".join(corpus)
    assert len(corpus) >= 80
    assert sum(n.startswith("truncated at") for n in corpus) >= 20
    assert sum(n.startswith("bit ") for n in corpus) >= 40
    for kind in ("bad magic", "version", "tensor count", "metadata count", "key length",
                 "token list count", "tensor offset past the end", "tensor dim"):
        assert kind in names


def test_every_damaged_file_is_imported_or_refused_with_a_reason(
        corpus: dict[str, Path], paths: AppPaths) -> None:
    registry = ModelRegistry(paths)
    outcomes: dict[str, str] = {}
    for name, path in corpus.items():
        try:
            entry = registry.import_file(path, name=name)
        except RegistryError as exc:
            reason = str(exc)
            assert reason.startswith("Cannot import"), (name, reason)
            assert "Traceback" not in reason and len(reason) < 600, (name, reason)
            outcomes[name] = "refused"
        else:
            registry.remove(entry.id)
            outcomes[name] = "imported"
    wrongly_imported = [n for n, o in outcomes.items() if o == "imported"
                        and n.startswith(MUST_REFUSE)]
    assert not wrongly_imported
    assert "refused" in outcomes.values()
    # Nothing of a refused file stays in the models folder.
    imported = paths.models_dir / IMPORTED_DIR
    assert not imported.exists() or not any(imported.iterdir())
    assert [e.source for e in registry.models()] == ["bundled"]


def test_the_undamaged_model_imports(corpus: dict[str, Path], paths: AppPaths,
                                     tmp_path: Path) -> None:
    entry = ModelRegistry(paths).import_file(tiny_model(tmp_path / "tiny.gguf"))
    assert entry.architecture == "llama" and entry.file.is_file()
