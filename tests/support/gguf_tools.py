"""GGUF files for tests: a copy of a model with its metadata changed, a tiny model that
llama.cpp really loads, and a corpus of damaged and hostile variants of it.

Written against the GGUF format itself (little-endian: magic, version, tensor count,
metadata count, metadata entries, tensor infos, padding to the alignment, tensor data),
with ``gguf.GGUFWriter`` for the tiny model, so the files are what a converter writes.
"""

from __future__ import annotations

import random
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFValueType, GGUFWriter

_SCALAR_SIZES = {
    GGUFValueType.UINT8: 1, GGUFValueType.INT8: 1, GGUFValueType.BOOL: 1,
    GGUFValueType.UINT16: 2, GGUFValueType.INT16: 2,
    GGUFValueType.UINT32: 4, GGUFValueType.INT32: 4, GGUFValueType.FLOAT32: 4,
    GGUFValueType.UINT64: 8, GGUFValueType.INT64: 8, GGUFValueType.FLOAT64: 8,
}


@dataclass(frozen=True)
class Entry:
    """One metadata entry as raw bytes: where it starts and what it holds."""

    key: str
    start: int  # offset of the key's length
    value_start: int  # offset of the value type
    end: int


@dataclass(frozen=True)
class Layout:
    """Where the parts of a (well-formed) GGUF file lie."""

    version: int
    tensor_count: int
    entries: tuple[Entry, ...]
    tensor_infos: tuple[int, int]  # [start, end)
    tensor_info_starts: tuple[int, ...]
    alignment: int
    data_offset: int
    size: int

    def entry(self, key: str) -> Entry:
        return next(e for e in self.entries if e.key == key)


def _skip_value(data: bytes, pos: int, vtype: int) -> int:
    if vtype == GGUFValueType.STRING:
        (length,) = struct.unpack_from("<Q", data, pos)
        return pos + 8 + length
    if vtype == GGUFValueType.ARRAY:
        etype, count = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if etype == GGUFValueType.STRING:
            for _ in range(count):
                (length,) = struct.unpack_from("<Q", data, pos)
                pos += 8 + length
            return pos
        return pos + count * _SCALAR_SIZES[GGUFValueType(etype)]
    return pos + _SCALAR_SIZES[GGUFValueType(vtype)]


def layout(path: Path) -> Layout:
    """Parse a well-formed GGUF file's structure (no checks: for files we made)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        data = fh.read(min(size, 64 << 20))
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    pos = 24
    entries = []
    alignment = 32
    for _ in range(n_kv):
        start = pos
        (klen,) = struct.unpack_from("<Q", data, pos)
        key = data[pos + 8:pos + 8 + klen].decode()
        pos += 8 + klen
        value_start = pos
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos = _skip_value(data, pos + 4, vtype)
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", data, value_start + 4)
        entries.append(Entry(key, start, value_start, pos))
    infos_start = pos
    starts = []
    for _ in range(n_tensors):
        starts.append(pos)
        (nlen,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + nlen
        (n_dims,) = struct.unpack_from("<I", data, pos)
        pos += 4 + 8 * n_dims + 4 + 8
    data_offset = -(-pos // alignment) * alignment
    return Layout(version, n_tensors, tuple(entries), (infos_start, pos), tuple(starts),
                  alignment, data_offset, size)


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _kv_string(key: str, value: str) -> bytes:
    return _string(key) + struct.pack("<I", GGUFValueType.STRING) + _string(value)


def with_metadata(source: Path, dest: Path, strings: dict[str, str | None]) -> Path:
    """Copy the GGUF at ``source`` to ``dest`` with string metadata set (None: removed).
    The tensor data is copied unchanged; the header is re-padded to the alignment."""
    info = layout(source)
    with source.open("rb") as fh:
        head = fh.read(info.data_offset)
    kept = [head[e.start:e.end] for e in info.entries if e.key not in strings]
    added = [_kv_string(k, v) for k, v in strings.items() if v is not None]
    header = (head[:8] + struct.pack("<QQ", info.tensor_count, len(kept) + len(added))
              + b"".join(kept) + b"".join(added)
              + head[info.tensor_infos[0]:info.tensor_infos[1]])
    header += b"\0" * (-len(header) % info.alignment)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, dest.open("wb") as out:
        out.write(header)
        src.seek(info.data_offset)
        shutil.copyfileobj(src, out, 4 << 20)
    return dest


# -- a tiny model llama.cpp loads -----------------------------------------------------------


def tiny_model(dest: Path, *, metadata: dict[str, str] | None = None, base_models: int = 0,
               n_embd: int = 64, n_ff: int = 128, seed: int = 0) -> Path:
    """A one-layer Llama with a byte-level vocabulary (259 tokens): about 200 KB, loads
    in milliseconds and writes (nonsense) text. ``metadata`` adds string entries;
    ``base_models`` sets ``general.base_model.count``."""
    rng = np.random.default_rng(seed)
    dest.parent.mkdir(parents=True, exist_ok=True)
    vocab = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    writer = GGUFWriter(str(dest), "llama")
    writer.add_name("Tiny test model")
    writer.add_context_length(256)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_rope_dimension_count(n_embd // 4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocab)
    writer.add_token_scores([0.0] * len(vocab))
    writer.add_token_types([2, 3, 3] + [6] * 256)  # unknown, control, control, bytes
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    for key, value in (metadata or {}).items():
        writer.add_string(key, value)
    if base_models:
        writer.add_uint32("general.base_model.count", base_models)

    def tensor(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    n_kv = n_embd // 2
    tensor("token_embd.weight", len(vocab), n_embd)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    tensor("blk.0.attn_q.weight", n_embd, n_embd)
    tensor("blk.0.attn_k.weight", n_kv, n_embd)
    tensor("blk.0.attn_v.weight", n_kv, n_embd)
    tensor("blk.0.attn_output.weight", n_embd, n_embd)
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    tensor("blk.0.ffn_gate.weight", n_ff, n_embd)
    tensor("blk.0.ffn_up.weight", n_ff, n_embd)
    tensor("blk.0.ffn_down.weight", n_embd, n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest


# -- the hostile corpus -----------------------------------------------------------------------

Mutation = Callable[[bytearray, Layout], bytearray]


def _put(fmt: str, offset: int, value: int) -> Mutation:
    def mutate(data: bytearray, _info: Layout) -> bytearray:
        struct.pack_into(fmt, data, offset, value)
        return data
    return mutate


def _truncate(at: int) -> Mutation:
    return lambda data, _info: data[:at]


def _at_entry(key: str, fmt: str, delta: int, value: int) -> Mutation:
    """Overwrite a field at ``delta`` bytes into the entry for ``key``."""
    def mutate(data: bytearray, info: Layout) -> bytearray:
        entry = info.entry(key)
        base = entry.value_start if delta >= 0 else entry.start
        struct.pack_into(fmt, data, base + abs(delta) - (1 if delta < 0 else 0), value)
        return data
    return mutate


def _at_tensor(index: int, field: str, value: int) -> Mutation:
    """Overwrite the first dimension or the data offset of a tensor's info."""
    def mutate(data: bytearray, info: Layout) -> bytearray:
        pos = info.tensor_info_starts[index]
        (nlen,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + nlen
        (n_dims,) = struct.unpack_from("<I", data, pos)
        if field == "dim":
            struct.pack_into("<Q", data, pos + 4, value)
        else:  # the data offset, after the dims and the type
            struct.pack_into("<Q", data, pos + 4 + 8 * n_dims + 4, value)
        return data
    return mutate


def _flip(offset: int, mask: int) -> Mutation:
    def mutate(data: bytearray, _info: Layout) -> bytearray:
        data[offset] ^= mask
        return data
    return mutate


def corpus_mutations(info: Layout, flips: int = 40, seed: int = 12) -> dict[str, Mutation]:
    """Named ways to damage a model file: truncations at many offsets, bad magic and
    versions, absurd counts and lengths, tensors past the end, byte flips in the header."""
    mutations: dict[str, Mutation] = {}
    cuts = sorted({0, 3, 4, 7, 8, 15, 16, 23, 24, 25, 40, 100, info.tensor_infos[0] - 1,
                   info.tensor_infos[0] + 5, info.tensor_infos[1] - 3, info.data_offset,
                   info.data_offset + 1, (info.data_offset + info.size) // 2, info.size - 1}
                  | {info.entries[i].start + 3 for i in range(0, len(info.entries), 3)})
    for at in cuts:
        mutations[f"truncated at {at}"] = _truncate(at)
    mutations["bad magic"] = lambda d, _i: bytearray(b"GGML") + d[4:]
    mutations["lower-case magic"] = lambda d, _i: bytearray(b"gguf") + d[4:]
    for version in (0, 1, 4, 0xFFFF, 0xFFFFFFFF, 3 << 24):
        mutations[f"version {version:#x}"] = _put("<I", 4, version)
    for count in (1 << 63, 1 << 32, info.tensor_count + 1):
        mutations[f"tensor count {count}"] = _put("<Q", 8, count)
    for count in (1 << 63, 1 << 32, len(info.entries) + 1):
        mutations[f"metadata count {count}"] = _put("<Q", 16, count)
    first = info.entries[0].key
    mutations["key length 2**63"] = lambda d, i: _put("<Q", i.entries[0].start, 1 << 63)(d, i)
    mutations["key length past the end"] = \
        lambda d, i: _put("<Q", i.entries[0].start, i.size)(d, i)
    mutations["unknown value type"] = _at_entry(first, "<I", 0, 99)
    mutations["name length 2**62"] = _at_entry("general.name", "<Q", 4, 1 << 62)
    mutations["token list count 2**62"] = _at_entry("tokenizer.ggml.tokens", "<Q", 8, 1 << 62)
    mutations["token list of arrays"] = _at_entry("tokenizer.ggml.tokens", "<I", 4,
                                                  GGUFValueType.ARRAY)
    mutations["first token length 2**40"] = _at_entry("tokenizer.ggml.tokens", "<Q", 16,
                                                      1 << 40)
    mutations["alignment 3"] = lambda d, i: _set_alignment(d, i, 3)
    mutations["tensor dim 2**40"] = _at_tensor(0, "dim", 1 << 40)
    mutations["tensor dim 0"] = _at_tensor(0, "dim", 0)
    mutations["tensor offset past the end"] = _at_tensor(info.tensor_count - 1, "offset",
                                                         info.size)
    mutations["tensor offset 2**63"] = _at_tensor(1, "offset", 1 << 63)
    mutations["tensor offset misaligned"] = _at_tensor(1, "offset", 4)
    mutations["tensors overlap"] = _at_tensor(2, "offset", 0)
    rng = random.Random(seed)
    for _ in range(flips):
        offset = rng.randrange(4, info.data_offset)
        mask = 1 << rng.randrange(8)
        mutations[f"bit {mask.bit_length() - 1} flipped at {offset}"] = _flip(offset, mask)
    return mutations


def _set_alignment(data: bytearray, info: Layout, value: int) -> bytearray:
    # Add a general.alignment entry: the file then claims a layout it does not have.
    kv = (_string("general.alignment") + struct.pack("<I", GGUFValueType.UINT32)
          + struct.pack("<I", value))
    end = info.entries[-1].end
    out = bytearray(data[:16]) + struct.pack("<Q", len(info.entries) + 1) + data[24:end] \
        + kv + data[end:]
    return out


def write_corpus(source: Path, folder: Path, flips: int = 40) -> dict[str, Path]:
    """Write one damaged copy of ``source`` per mutation into ``folder``; name -> path."""
    info = layout(source)
    original = bytearray(source.read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, (name, mutate) in enumerate(corpus_mutations(info, flips).items()):
        path = folder / f"{i:03d}.gguf"
        path.write_bytes(bytes(mutate(bytearray(original), info)))
        files[name] = path
    return files
