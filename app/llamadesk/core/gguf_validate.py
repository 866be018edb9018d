"""Check a GGUF file's header before llama.cpp sees it, and read the metadata we need.

llama.cpp trusts the lengths and offsets in a GGUF header; a truncated download or a
hostile file can make it read past the end of the file or allocate absurd amounts of
memory. So every file is walked here first, in plain Python, against the file's real
size: magic, version, counts, every string and array length, every tensor's extent.

We parse the header ourselves rather than with ``gguf.GGUFReader``: the reader builds
a numpy view for every token string (about 2 s for a 49k vocabulary) and assumes the
lengths it reads are sane. The ``gguf`` package still supplies the vocabulary: key
names, value types, tensor types and their block sizes, file-type names.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from llamadesk.core.gguf_constants import (
    GGUF_DEFAULT_ALIGNMENT,
    Keys,
    LlamaFileType,
)
from llamadesk.core.gguf_hazards import bad_hyperparameter, missing_byte_token
from llamadesk.core.gguf_reader import (
    KEEP_ARRAY_ELEMENTS,
    MAGIC,
    MAX_KEY_LENGTH,
    MAX_STRING_VALUE,
    MIN_KV_BYTES,
    MIN_TENSOR_INFO_BYTES,
    SUPPORTED_VERSIONS,
    ArrayInfo,
    GGUFCursor,
    GGUFHeader,
    GGUFValidationError,
    GGUFValue,
    TensorInfo,
    read_tensor_info,
    read_value,
    value_type,
)

__all__ = [  # the header types live in core.gguf_reader; importable from here too
    "KEEP_ARRAY_ELEMENTS",
    "MAX_KEY_LENGTH",
    "MAX_STRING_VALUE",
    "ArrayInfo",
    "GGUFHeader",
    "GGUFMetadata",
    "GGUFValidationError",
    "GGUFValue",
    "TensorInfo",
    "quantisation_name",
    "read_metadata",
    "validate_gguf",
]


def validate_gguf(path: str | os.PathLike[str]) -> GGUFHeader:
    """Walk the whole header of the GGUF file at ``path`` and check it against the file.

    Returns the parsed header; raises GGUFValidationError with a readable reason if the
    file is not a GGUF file, is of an unsupported version, or has any count, length or
    tensor extent that does not fit inside the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        fh = path.open("rb", buffering=0)  # GGUFCursor reads ahead itself
    except OSError as exc:
        raise GGUFValidationError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    with fh:
        try:
            return _parse(path, fh, size)
        except GGUFValidationError as exc:
            raise GGUFValidationError(f"{path.name} is not a valid GGUF model: {exc}") from None
        except OSError as exc:
            raise GGUFValidationError(f"cannot read {path.name}: {exc.strerror or exc}") from exc


def _parse(path: Path, fh: BinaryIO, size: int) -> GGUFHeader:
    cur = GGUFCursor(fh, size)
    if size < 4:
        raise GGUFValidationError(f"the file is only {size} bytes long")
    magic = cur.read(4, "magic")
    if magic != MAGIC:
        raise GGUFValidationError(f"it starts with {magic!r} instead of the GGUF magic "
                                  f"{MAGIC!r}")
    version = cur.u32("version")
    if version not in SUPPORTED_VERSIONS:
        if version & 0xFFFF == 0 and (version >> 24) in SUPPORTED_VERSIONS:
            raise GGUFValidationError("it is a big-endian GGUF file, which llama.cpp cannot "
                                      "load on this machine")
        raise GGUFValidationError(f"GGUF version {version} is not supported (only "
                                  f"{' and '.join(map(str, SUPPORTED_VERSIONS))})")
    tensor_count = cur.u64("tensor count")
    kv_count = cur.u64("metadata count")
    if kv_count * MIN_KV_BYTES > cur.remaining:
        raise GGUFValidationError(f"it claims {kv_count:,} metadata entries, more than the "
                                  f"file's {size:,} bytes can hold (truncated or corrupt)")
    if tensor_count * MIN_TENSOR_INFO_BYTES > cur.remaining:
        raise GGUFValidationError(f"it claims {tensor_count:,} tensors, more than the file's "
                                  f"{size:,} bytes can hold (truncated or corrupt)")

    metadata: dict[str, GGUFValue] = {}
    for index in range(kv_count):
        key = cur.string(f"the name of metadata entry {index:,}", MAX_KEY_LENGTH)
        if key in metadata:
            raise GGUFValidationError(f"metadata key {key!r} appears twice")
        vtype = value_type(cur.u32(f"type of {key!r}"), f"metadata {key!r}")
        metadata[key] = read_value(cur, vtype, key)

    why = (missing_byte_token(metadata, cur.vocabulary) if cur.vocabulary is not None
           else None) or bad_hyperparameter(metadata)
    if why:
        raise GGUFValidationError(why)
    names: set[str] = set()
    tensors = tuple(read_tensor_info(cur, i, names) for i in range(tensor_count))

    alignment = metadata.get(Keys.General.ALIGNMENT, GGUF_DEFAULT_ALIGNMENT)
    if (not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0
            or alignment & (alignment - 1)):
        raise GGUFValidationError(f"general.alignment is {alignment!r}, not a power of two")
    data_offset = -(-cur.pos // alignment) * alignment
    if tensors and data_offset > size:
        raise GGUFValidationError(f"the tensor data would start at byte {data_offset:,}, "
                                  f"past the end of the {size:,}-byte file (truncated)")

    end = 0
    for tensor in sorted(tensors, key=lambda t: t.offset):
        if tensor.offset % alignment:
            raise GGUFValidationError(f"tensor {tensor.name!r} starts at offset "
                                      f"{tensor.offset:,}, not aligned to {alignment}")
        if tensor.offset < end:
            raise GGUFValidationError(f"tensor {tensor.name!r} overlaps the tensor before it")
        end = tensor.offset + tensor.n_bytes
        if data_offset + end > size:
            raise GGUFValidationError(
                f"tensor {tensor.name!r} ends at byte {data_offset + end:,}, past the end of "
                f"the {size:,}-byte file (truncated or corrupt)")
    return GGUFHeader(path, size, version, alignment, data_offset, metadata, tensors)


@dataclass(frozen=True)
class GGUFMetadata:
    """What the app needs to know about a model file: for the registry, the chat template
    and the fit estimate. Fields are None where the file does not say."""

    architecture: str | None
    name: str | None
    size_label: str | None
    parameter_count: int
    quantisation: str | None
    context_length: int | None
    block_count: int | None
    head_count: int | None
    head_count_kv: int | None
    embedding_length: int | None
    key_length: int | None
    value_length: int | None
    vocab_size: int | None
    chat_template: str | None = field(repr=False)
    licence: str | None
    split_count: int | None
    file_size: int
    tensor_bytes: int
    #: Where the model says it comes from, for the licence check: its base models'
    #: names and repositories, its own base name and its licence's name and link.
    lineage: tuple[str, ...] = ()

    @property
    def head_dim(self) -> int | None:
        """Size of one attention head (what the KV cache stores per head per token)."""
        if self.key_length:
            return self.key_length
        if self.embedding_length and self.head_count:
            return self.embedding_length // self.head_count
        return None


def _int(value: GGUFValue | None) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list):  # per-layer values (some architectures): the largest counts
        ints = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        return max(ints) if ints else None
    return None


def _str(value: GGUFValue | None) -> str | None:
    return value if isinstance(value, str) else None


def quantisation_name(file_type: int | None, tensors: tuple[TensorInfo, ...] = ()) -> str | None:
    """The file's quantisation: from ``general.file_type`` (``MOSTLY_Q4_K_M`` -> ``Q4_K_M``),
    else the tensor type holding the most bytes."""
    if file_type is not None:
        try:
            name = LlamaFileType(file_type).name
        except ValueError:
            name = ""
        for prefix in ("MOSTLY_", "ALL_"):
            name = name.removeprefix(prefix)
        if name and name != "GUESSED":
            return name
    if tensors:
        by_type: Counter[str] = Counter()
        for tensor in tensors:
            by_type[tensor.type.name] += tensor.n_bytes
        return by_type.most_common(1)[0][0]
    return None


def read_metadata(path: str | os.PathLike[str]) -> GGUFMetadata:
    """Validate the file (see ``validate_gguf``) and return its metadata."""
    header = validate_gguf(path)
    meta = header.metadata
    arch = _str(meta.get(Keys.General.ARCHITECTURE))

    def arch_key(template: str) -> GGUFValue | None:
        return meta.get(template.format(arch=arch)) if arch else None

    tokens = meta.get(Keys.Tokenizer.LIST)
    if isinstance(tokens, ArrayInfo):
        vocab_size: int | None = tokens.count
    elif isinstance(tokens, list):
        vocab_size = len(tokens)
    else:
        vocab_size = _int(arch_key(Keys.LLM.VOCAB_SIZE))
    return GGUFMetadata(
        architecture=arch,
        name=_str(meta.get(Keys.General.NAME)),
        size_label=_str(meta.get(Keys.General.SIZE_LABEL)),
        parameter_count=sum(t.n_elements for t in header.tensors),
        quantisation=quantisation_name(_int(meta.get(Keys.General.FILE_TYPE)), header.tensors),
        context_length=_int(arch_key(Keys.LLM.CONTEXT_LENGTH)),
        block_count=_int(arch_key(Keys.LLM.BLOCK_COUNT)),
        head_count=_int(arch_key(Keys.Attention.HEAD_COUNT)),
        head_count_kv=_int(arch_key(Keys.Attention.HEAD_COUNT_KV)),
        embedding_length=_int(arch_key(Keys.LLM.EMBEDDING_LENGTH)),
        key_length=_int(arch_key(Keys.Attention.KEY_LENGTH)),
        value_length=_int(arch_key(Keys.Attention.VALUE_LENGTH)),
        vocab_size=vocab_size,
        chat_template=_str(meta.get(Keys.Tokenizer.CHAT_TEMPLATE)),
        licence=_str(meta.get(Keys.General.LICENSE)),
        split_count=_int(meta.get(Keys.Split.LLM_KV_SPLIT_COUNT)),
        file_size=header.file_size,
        tensor_bytes=sum(t.n_bytes for t in header.tensors),
        lineage=_lineage(meta),
    )


def _lineage(meta: dict[str, GGUFValue]) -> tuple[str, ...]:
    """The text fields that say what a model derives from and under which licence."""
    keys = [Keys.General.NAME, Keys.General.BASENAME, Keys.General.LICENSE_NAME,
            Keys.General.LICENSE_LINK]
    count = _int(meta.get(Keys.General.BASE_MODEL_COUNT)) or 0
    for i in range(min(count, KEEP_ARRAY_ELEMENTS)):
        keys += [template.format(id=i) for template in (
            Keys.General.BASE_MODEL_NAME, Keys.General.BASE_MODEL_ORGANIZATION,
            Keys.General.BASE_MODEL_REPO_URL)]
    return tuple(v for v in (_str(meta.get(k)) for k in keys) if v)
