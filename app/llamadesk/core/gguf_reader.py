"""Reading a GGUF header safely: its types, and a cursor that never reads past the file.

``core.gguf_validate`` walks a whole header with these; every length is checked against
the bytes that are really left before anything is allocated or read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from llamadesk.core.gguf_constants import (
    GGML_QUANT_SIZES,
    GGMLQuantizationType,
    GGUFValueType,
    Keys,
)
from llamadesk.core.gguf_errors import GGUFValidationError as GGUFValidationError

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
MIN_KV_BYTES = 8 + 4 + 1  # empty key, a type, the smallest value
MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8  # empty name, n_dims, one dim, type, offset


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


class GGUFCursor:
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


def value_type(raw: int, what: str) -> GGUFValueType:
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise GGUFValidationError(f"{what} has an unknown value type {raw}") from None


def read_value(cur: GGUFCursor, vtype: GGUFValueType, key: str) -> GGUFValue:
    if vtype == GGUFValueType.STRING:
        return cur.string(f"the value of {key!r}", MAX_STRING_VALUE)
    if vtype == GGUFValueType.ARRAY:
        etype = value_type(cur.u32(f"element type of {key!r}"), f"array {key!r}")
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
            return [read_value(cur, etype, f"{key}[{i}]") for i in range(count)]
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


def read_tensor_info(cur: GGUFCursor, index: int, names: set[str]) -> TensorInfo:
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
