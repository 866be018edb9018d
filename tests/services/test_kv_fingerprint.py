"""What a kept KV state is tied to (services/kv_persist.fingerprint): a state made by
another build of llama.cpp, another cache layout or, on a GPU, another batch shape is
never restored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from llamadesk.services.engine_types import LoadOptions
from llamadesk.services.kv_persist import fingerprint
from llamadesk.services.llama_runtime import build_identity, llama_cpp_version, system_info


def test_the_build_and_the_cache_layout_are_part_of_it(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 60)
    cpu = LoadOptions()
    base = fingerprint(model, cpu, "0.3.36\0CPU : AVX2 = 1")
    assert base == fingerprint(model, cpu, "0.3.36\0CPU : AVX2 = 1")
    assert base != fingerprint(model, cpu, "0.3.36\0CUDA : ARCHS = 890")
    assert base != fingerprint(model, replace(cpu, kv_cache_type="f16"), "0.3.36\0CPU : AVX2 = 1")
    # On a CPU the batch size does not change the cells; on a GPU it may.
    assert base == fingerprint(model, replace(cpu, n_batch=256), "0.3.36\0CPU : AVX2 = 1")
    gpu = replace(cpu, n_gpu_layers=-1)
    assert fingerprint(model, gpu, "b") != fingerprint(model, replace(gpu, n_batch=256), "b")


def test_the_build_identity_names_the_version_and_the_builds_features() -> None:
    identity = build_identity()
    assert identity.startswith(llama_cpp_version()) and system_info() in identity
