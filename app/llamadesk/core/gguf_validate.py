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
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from llamadesk.core.gguf_constants import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGMLQuantizationType,
    GGUFValueType,
    Keys,
    LlamaFileType,
)
from llamadesk.core.gguf_hazards import bad_hyperparameter, missing_byte_token

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_KEY_LENGTH = 65_535
#: Strings we keep are read into memory; nothing legitimate (a chat template) comes near.
MAX_STRING_VALUE = 64 * 1024 * 1024
#: Arrays up to this many elements are kept; longer ones (vocabularies) are only skipped.
KEEP_ARRAY_ELEMENTS = 256

_SCALAR_FORMATS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H", GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q", GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
_MIN_KV_BYTES = 8 + 4 + 1  # empty key, a type, the smallest value
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8  # empty name, n_dims, one dim, type, offset


class GGUFValidationError(Exception):
    """The file is not a GGUF file llama.cpp can safely read; ``str()`` says why."""


@dataclass(frozen=True)
class ArrayInfo:
    """A long metadata array that was checked but not kept (for example the vocabulary)."""

    element_type: GGUFValueType
    count: int


GGUFValue = int | float | bool | str | list["GGUFValue"] | ArrayInfo


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in the header."""

    name: str
    shape: tuple[int, ...]
    type: GGMLQuantizationType
    offset: int  # relative to the start of the data section
    n_elements: int
    n_bytes: int


@dataclass(frozen=True)
class GGUFHeader:
    """A validated GGUF header."""

    path: Path
    file_size: int
    version: int
    alignment: int
    data_offset: int
    metadata: dict[str, GGUFValue] = field(repr=False)
    tensors: tuple[TensorInfo, ...] = field(repr=False)


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
#: Bytes read from the file at a time. The header is parsed from this window, so that the
#: tens of thousands of vocabulary strings cost a slice and an unpack each, not a read.
_WINDOW = 1 << 20


class _Cursor:
    """Reads a file front to back, refusing any read that would pass its end.

    The bytes come through a window of ``_WINDOW`` bytes read ahead; a skip only moves
    ``pos``, and the next read past the window reads afresh from there.
    """

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self._fh = fh
        self.size = size
        self.pos = 0
        self._buf = b""
        self._base = 0  # the file offset of _buf[0]
        self.vocabulary: set[bytes] | None = None  # the token texts, once read

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def _need(self, n: int, what: str) -> None:
        if n < 0 or n > self.remaining:
            raise GGUFValidationError(
                f"{what} at byte {self.pos:,} claims {n:,} bytes, but only "
                f"{self.remaining:,} remain in the file (truncated or corrupt)")

    def _window(self, n: int, what: str) -> int:
        """Make the window hold bytes [pos, pos + n); return pos's index in it."""
        index = self.pos - self._base
        if index < 0 or index + n > len(self._buf):
            self._fh.seek(self.pos)
            want = min(max(n, _WINDOW), self.remaining)  # nothing past the size checked
            buf = self._fh.read(want)
            while len(buf) < n and (more := self._fh.read(want - len(buf))):
                buf += more  # a short read of an unbuffered file
            self._buf, self._base, index = buf, self.pos, 0
            if len(buf) < n:  # the file shrank under us
                raise GGUFValidationError(f"{what}: the file ended early at byte "
                                          f"{self.pos:,}")
        return index

    def read(self, n: int, what: str) -> bytes:
        self._need(n, what)
        index = self._window(n, what)
        self.pos += n
        return self._buf[index:index + n]

    def skip(self, n: int, what: str) -> None:
        self._need(n, what)
        self.pos += n

    def u32(self, what: str) -> int:
        self._need(4, what)
        index = self._window(4, what)
        self.pos += 4
        return int(_U32.unpack_from(self._buf, index)[0])

    def u64(self, what: str) -> int:
        self._need(8, what)
        index = self._window(8, what)
        self.pos += 8
        return int(_U64.unpack_from(self._buf, index)[0])

    def string(self, what: str, limit: int) -> str:
        length = self.u64(f"length of {what}")
        self._need(length, what)
        if length > limit:
            raise GGUFValidationError(f"{what} is {length:,} bytes long (limit {limit:,})")
        return self.read(length, what).decode("utf-8", errors="replace")

    def skip_strings(self, count: int, key: str) -> None:
        """Skip the ``count`` strings of array ``key``, checking each length against the
        file: the checks of ``u64`` and ``skip`` per string, in a tight loop, for a
        vocabulary holds tens of thousands of them."""
        unpack = _U64.unpack_from
        size, pos, first = self.size, self.pos, 0
        while first < count:
            buf, base = self._buf, self._base
            try:
                for i in range(first, count):
                    length = unpack(buf, pos - base)[0]
                    pos += 8 + length
                    if pos > size:
                        self.pos = pos - length
                        self._need(length, f"string {i:,} of array {key!r}")  # raises
                first = count
            except struct.error:  # the next length is not (wholly) in the window
                self.pos, first = pos, i
                what = f"length of string {i:,} of array {key!r}"
                self._need(8, what)
                self._window(8, what)
        self.pos = pos


    def unique_strings(self, count: int, key: str) -> None:
        """Read the ``count`` strings of array ``key`` and refuse a repeated one.

        llama.cpp maps each vocabulary token to its id and aborts the whole process
        (an assertion, not an error it reports) when two tokens have the same text; an
        empty token counts as ``[EMPTY_<i>]``, as llama.cpp renames it."""
        unpack = _U64.unpack_from
        unique: set[bytes] = set()
        add = unique.add
        size, start, pos, i = self.size, self.pos, self.pos, 0
        while i < count:
            buf, base = self._buf, self._base
            try:
                while i < count:
                    index = pos - base
                    length = unpack(buf, index)[0]
                    end = index + 8 + length
                    if end > len(buf) or pos + 8 + length > size:
                        raise struct.error  # not wholly in the window, or past the end
                    add(buf[index + 8:end])
                    pos += 8 + length
                    i += 1
            except struct.error:
                self.pos = pos
                what = f"string {i:,} of array {key!r}"
                length = self.u64(f"length of {what}")
                self.pos = pos
                self._need(8 + length, what)
                self._window(8 + length, what)
        self.pos = pos
        self.vocabulary = unique
        if len(unique) == count and b"" not in unique:
            return
        self.pos = start  # rare: read them again, in order, to name the repeated one
        texts = [self.read(self.u64("length"), "token") for _ in range(count)]
        self.pos = pos
        seen: dict[bytes, int] = {}
        for i, text in enumerate(texts):
            first = seen.setdefault(text or f"[EMPTY_{i}]".encode(), i)
            if first != i:
                raise GGUFValidationError(
                    f"array {key!r} holds the token {text.decode('utf-8', 'replace')!r} "
                    f"twice (entries {first:,} and {i:,}); llama.cpp cannot load such a "
                    "vocabulary")


def _value_type(raw: int, what: str) -> GGUFValueType:
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise GGUFValidationError(f"{what} has an unknown value type {raw}") from None


def _read_value(cur: _Cursor, vtype: GGUFValueType, key: str) -> GGUFValue:
    if vtype == GGUFValueType.STRING:
        return cur.string(f"the value of {key!r}", MAX_STRING_VALUE)
    if vtype == GGUFValueType.ARRAY:
        etype = _value_type(cur.u32(f"element type of {key!r}"), f"array {key!r}")
        count = cur.u64(f"length of array {key!r}")
        if etype == GGUFValueType.ARRAY:
            raise GGUFValidationError(f"array {key!r} holds arrays (llama.cpp refuses nested "
                                      "arrays)")
        min_size = 8 if etype == GGUFValueType.STRING else struct.calcsize(
            _SCALAR_FORMATS[etype])
        if count * min_size > cur.remaining:
            raise GGUFValidationError(
                f"array {key!r} claims {count:,} elements, more than the "
                f"{cur.remaining:,} bytes left in the file can hold (truncated or corrupt)")
        if etype == GGUFValueType.STRING and key == Keys.Tokenizer.LIST:
            start = cur.pos
            cur.unique_strings(count, key)
            if count > KEEP_ARRAY_ELEMENTS:
                return ArrayInfo(etype, count)
            cur.pos = start
        if count <= KEEP_ARRAY_ELEMENTS:
            return [_read_value(cur, etype, f"{key}[{i}]") for i in range(count)]
        if etype == GGUFValueType.STRING:
            cur.skip_strings(count, key)
        else:
            cur.skip(count * min_size, f"array {key!r}")
        return ArrayInfo(etype, count)
    fmt = _SCALAR_FORMATS[vtype]
    value = struct.unpack(fmt, cur.read(struct.calcsize(fmt), f"the value of {key!r}"))[0]
    if isinstance(value, bool | int | float):
        return value
    raise GGUFValidationError(f"{key!r} holds an unreadable value")  # pragma: no cover


def _tensor_info(cur: _Cursor, index: int, names: set[str]) -> TensorInfo:
    name = cur.string(f"the name of tensor {index:,}", MAX_KEY_LENGTH)
    if name in names:
        raise GGUFValidationError(f"tensor {name!r} appears twice")
    names.add(name)
    n_dims = cur.u32(f"dimension count of tensor {name!r}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise GGUFValidationError(f"tensor {name!r} has {n_dims} dimensions "
                                  f"(llama.cpp allows 1 to {MAX_DIMS})")
    shape = tuple(cur.u64(f"shape of tensor {name!r}") for _ in range(n_dims))
    raw_type = cur.u32(f"type of tensor {name!r}")
    try:
        ttype = GGMLQuantizationType(raw_type)
        block, type_size = GGML_QUANT_SIZES[ttype]
    except (ValueError, KeyError):
        raise GGUFValidationError(f"tensor {name!r} has an unknown type {raw_type}") from None
    offset = cur.u64(f"data offset of tensor {name!r}")
    n_elements = 1
    for dim in shape:
        n_elements *= dim
        if n_elements >= 1 << 62:
            raise GGUFValidationError(f"tensor {name!r} has an absurd shape {shape}")
    if shape[0] % block:
        raise GGUFValidationError(f"tensor {name!r}: its row of {shape[0]} elements is not a "
                                  f"whole number of {ttype.name} blocks of {block}")
    n_bytes = n_elements // block * type_size
    return TensorInfo(name, shape, ttype, offset, n_elements, n_bytes)


def validate_gguf(path: str | os.PathLike[str]) -> GGUFHeader:
    """Walk the whole header of the GGUF file at ``path`` and check it against the file.

    Returns the parsed header; raises GGUFValidationError with a readable reason if the
    file is not a GGUF file, is of an unsupported version, or has any count, length or
    tensor extent that does not fit inside the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        fh = path.open("rb", buffering=0)  # _Cursor reads ahead itself
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
    cur = _Cursor(fh, size)
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
    if kv_count * _MIN_KV_BYTES > cur.remaining:
        raise GGUFValidationError(f"it claims {kv_count:,} metadata entries, more than the "
                                  f"file's {size:,} bytes can hold (truncated or corrupt)")
    if tensor_count * _MIN_TENSOR_INFO_BYTES > cur.remaining:
        raise GGUFValidationError(f"it claims {tensor_count:,} tensors, more than the file's "
                                  f"{size:,} bytes can hold (truncated or corrupt)")

    metadata: dict[str, GGUFValue] = {}
    for index in range(kv_count):
        key = cur.string(f"the name of metadata entry {index:,}", MAX_KEY_LENGTH)
        if key in metadata:
            raise GGUFValidationError(f"metadata key {key!r} appears twice")
        vtype = _value_type(cur.u32(f"type of {key!r}"), f"metadata {key!r}")
        metadata[key] = _read_value(cur, vtype, key)

    why = (missing_byte_token(metadata, cur.vocabulary) if cur.vocabulary is not None
           else None) or bad_hyperparameter(metadata)
    if why:
        raise GGUFValidationError(why)
    names: set[str] = set()
    tensors = tuple(_tensor_info(cur, i, names) for i in range(tensor_count))

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
