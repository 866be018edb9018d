"""GGUF header validation: the real bundled model passes; truncated and corrupted files
are refused with a reason a person can read."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import pytest

from llamadesk.core import gguf_reader
from llamadesk.core.gguf_validate import (
    ArrayInfo,
    GGUFValidationError,
    quantisation_name,
    read_metadata,
    validate_gguf,
)

F32 = 0


# -- a tiny GGUF writer, so each corruption sits at a known place ------------------------
def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_str(key: str, value: str) -> bytes:
    return _s(key) + struct.pack("<I", 8) + _s(value)


def kv_strings(key: str, values: list[bytes], count: int | None = None) -> bytes:
    return (_s(key) + struct.pack("<IIQ", 9, 8, len(values) if count is None else count)
            + b"".join(_s(v) for v in values))


def kv_u32(key: str, value: int) -> bytes:
    return _s(key) + struct.pack("<II", 4, value)


def tensor(name: str, dims: tuple[int, ...], offset: int, ttype: int = F32) -> bytes:
    return (_s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<IQ", ttype, offset))


def build(kvs: list[bytes] | None = None, tensors: list[bytes] | None = None,
          data_size: int = 256, *, version: int = 3, n_kv: int | None = None,
          n_tensors: int | None = None, alignment: int = 32) -> bytes:
    kvs = kvs if kvs is not None else [kv_str("general.architecture", "llama"),
                                       kv_u32("llama.block_count", 2)]
    tensors = tensors if tensors is not None else [tensor("a.weight", (32,), 0),
                                                   tensor("b.weight", (32,), 128)]
    head = (b"GGUF" + struct.pack("<I", version)
            + struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors,
                          len(kvs) if n_kv is None else n_kv)
            + b"".join(kvs) + b"".join(tensors))
    head += b"\0" * (-len(head) % alignment)
    return head + b"\x01" * data_size


def write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path: Path) -> str:
    with pytest.raises(GGUFValidationError) as info:
        validate_gguf(path)
    message = str(info.value)
    assert message.startswith(f"{path.name} is not a valid GGUF model: ")
    return message


# -- the real model ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_bytes(bundled_model_path: Path) -> bytes:
    return bundled_model_path.read_bytes()


def test_bundled_model_validates_and_reads(bundled_model_path: Path) -> None:
    meta = read_metadata(bundled_model_path)
    assert meta.architecture == "llama"
    assert meta.quantisation == "Q4_1"
    assert meta.context_length == 8192
    assert (meta.block_count, meta.head_count, meta.head_count_kv) == (30, 9, 3)
    assert meta.embedding_length == 576 and meta.head_dim == 64
    assert meta.vocab_size == 49152
    assert meta.chat_template and "im_start" in meta.chat_template
    assert 130_000_000 < meta.parameter_count < 140_000_000
    assert meta.file_size == bundled_model_path.stat().st_size
    assert meta.split_count is None


@pytest.mark.slow  # GGUFReader takes seconds over a 49k vocabulary
def test_parser_agrees_with_gguf_package(bundled_model_path: Path) -> None:
    ours = validate_gguf(bundled_model_path)
    theirs = gguf.GGUFReader(bundled_model_path)
    assert ours.data_offset == theirs.data_offset
    assert ours.alignment == theirs.alignment
    assert [(t.name, t.offset, t.n_bytes) for t in ours.tensors] == [
        (t.name, t.data_offset - theirs.data_offset, t.n_bytes) for t in theirs.tensors]
    assert set(ours.metadata) == {k for k in theirs.fields if not k.startswith("GGUF.")}


@pytest.mark.parametrize("keep", [0, 3, 20, 1_000, 1_000_000, 1_785_000, 2_000_000, -1])
def test_truncated_copies_are_refused(tmp_path: Path, model_bytes: bytes, keep: int) -> None:
    path = write(tmp_path, model_bytes[:keep])
    message = refused(path)
    assert any(word in message for word in ("only", "truncated", "past the end", "remain"))


def test_bad_magic(tmp_path: Path, model_bytes: bytes) -> None:
    message = refused(write(tmp_path, b"GGML" + model_bytes[4:4096]))
    assert "instead of the GGUF magic" in message


@pytest.mark.parametrize(("version", "expected"), [
    (1, "GGUF version 1 is not supported"),
    (7, "GGUF version 7 is not supported"),
    (3 << 24, "big-endian"),
])
def test_unsupported_versions(tmp_path: Path, model_bytes: bytes, version: int,
                              expected: str) -> None:
    data = model_bytes[:4] + struct.pack("<I", version) + model_bytes[8:4096]
    assert expected in refused(write(tmp_path, data))


def _patched(model_bytes: bytes, offset: int, value: int) -> bytes:
    return model_bytes[:offset] + struct.pack("<Q", value) + model_bytes[offset + 8:]


def test_huge_string_length(tmp_path: Path, model_bytes: bytes) -> None:
    # Byte 24 holds the length of the first metadata key.
    message = refused(write(tmp_path, _patched(model_bytes[:1_000_000], 24, 1 << 40)))
    assert "claims 1,099,511,627,776 bytes, but only" in message


def test_huge_counts(tmp_path: Path, model_bytes: bytes) -> None:
    assert "metadata entries" in refused(write(tmp_path, _patched(model_bytes[:4096], 16,
                                                                   1 << 50)))
    assert "tensors" in refused(write(tmp_path, _patched(model_bytes[:4096], 8, 1 << 50),
                                      "t.gguf"))


def test_flipped_data_byte_is_not_a_header_problem(tmp_path: Path, model_bytes: bytes) -> None:
    # The header check is structural; damaged tensor data is the sha256's job.
    data = bytearray(model_bytes)
    data[-1000] ^= 0xFF
    flipped = validate_gguf(write(tmp_path, bytes(data)))
    original = validate_gguf(write(tmp_path, model_bytes, "original.gguf"))
    assert flipped.tensors == original.tensors and flipped.metadata == original.metadata


# -- corruptions at known places in a tiny synthetic file -------------------------------------
def test_synthetic_file_is_valid(tmp_path: Path) -> None:
    header = validate_gguf(write(tmp_path, build()))
    assert [t.name for t in header.tensors] == ["a.weight", "b.weight"]
    assert header.metadata["llama.block_count"] == 2
    assert header.data_offset % 32 == 0


@pytest.mark.parametrize(("data", "expected"), [
    (build(tensors=[tensor("a.weight", (32,), 1024)]), "past the end"),
    (build(tensors=[tensor("a.weight", (32,), 8)]), "not aligned"),
    (build(tensors=[tensor("a.weight", (64,), 0), tensor("b.weight", (32,), 128)]),
     "overlaps"),
    (build(tensors=[tensor("a.weight", (32,), 0, ttype=99)]), "unknown type 99"),
    (build(tensors=[tensor("a.weight", (1, 1, 1, 1, 32), 0)]), "5 dimensions"),
    (build(tensors=[tensor("a.weight", (1 << 40, 1 << 40), 0)]), "absurd shape"),
    (build(tensors=[tensor("a.weight", (32,), 0), tensor("a.weight", (32,), 128)]),
     "appears twice"),
    (build(tensors=[tensor("q.weight", (31,), 0, ttype=2)]), "not a whole number"),
    (build(kvs=[_s("k") + struct.pack("<IIQ", 9, 4, 1 << 40)]), "claims 1,099,511,627,776 "
                                                                "elements"),
    (build(kvs=[_s("k") + struct.pack("<IIQ", 9, 9, 1)]), "nested arrays"),
    (build(kvs=[_s("k") + struct.pack("<I", 42)]), "unknown value type 42"),
    (build(kvs=[kv_u32("general.alignment", 3)]), "not a power of two"),
    (build(kvs=[kv_u32("x", 1), kv_u32("x", 2)]), "appears twice"),
    (build(n_kv=5), "only"),
])
def test_corrupt_headers_are_refused(tmp_path: Path, data: bytes, expected: str) -> None:
    assert expected in refused(write(tmp_path, data))


# -- long string arrays (vocabularies): skipped in a tight loop, each length still checked ----
@pytest.mark.parametrize("window", [9, 64, 4096])
def test_small_read_windows_give_the_same_header(bundled_model_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 window: int) -> None:
    # Every value, length and string then straddles a window boundary somewhere.
    expected = validate_gguf(bundled_model_path)
    monkeypatch.setattr(gguf_reader, "_WINDOW", window)
    assert validate_gguf(bundled_model_path) == expected


def test_long_string_array_across_windows(tmp_path: Path) -> None:
    words = [b"w%d" % i for i in range(300_000)]
    words[123_456] = b"x" * (3 << 20)  # longer than a read window: skipped, not read
    header = validate_gguf(write(tmp_path, build(kvs=[kv_strings("tokenizer.ggml.tokens",
                                                                 words)])))
    assert header.metadata["tokenizer.ggml.tokens"] == ArrayInfo(gguf.GGUFValueType.STRING,
                                                                 300_000)


def test_string_in_a_long_array_running_past_the_end(tmp_path: Path) -> None:
    words = [b"ab"] * 1_000
    data = build(kvs=[kv_strings("tokens", words)])
    at = data.index(_s(b"ab") * 1_000)
    data = data[:at + 300 * 10] + struct.pack("<Q", 1 << 33) + data[at + 300 * 10 + 8:]
    message = refused(write(tmp_path, data))
    assert f"string 300 of array 'tokens' at byte {at + 300 * 10 + 8:,} claims " \
           "8,589,934,592 bytes, but only" in message


def test_long_array_truncated_inside_a_length(tmp_path: Path) -> None:
    word = b"w" * 30  # long enough that the array's element count passes its first check
    data = build(kvs=[kv_strings("tokens", [word] * 1_000)])
    at = data.index(_s(word) * 1_000)
    message = refused(write(tmp_path, data[:at + 500 * 38 + 3]))
    assert f"length of string 500 of array 'tokens' at byte {at + 500 * 38:,} claims 8 " \
           "bytes, but only 3 remain" in message


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(GGUFValidationError, match="cannot read"):
        validate_gguf(tmp_path / "missing.gguf")


def test_quantisation_names() -> None:
    assert quantisation_name(15) == "Q4_K_M"
    assert quantisation_name(1) == "F16"
    assert quantisation_name(0) == "F32"
    assert quantisation_name(None) is None


# -- what would make llama.cpp abort the process rather than report an error ------------------
BYTE_TOKENS = [f"<0x{b:02X}>".encode() for b in range(256)]


def kv_f32(key: str, value: float) -> bytes:
    return _s(key) + struct.pack("<If", 6, value)


def vocabulary(tokens: list[bytes], model: str = "llama") -> list[bytes]:
    return [kv_str("general.architecture", "llama"), kv_str("tokenizer.ggml.model", model),
            kv_strings("tokenizer.ggml.tokens", tokens)]


@pytest.mark.parametrize("tokens", [
    [b"<unk>", b"<s>", b"</s>", *BYTE_TOKENS, b"hello", b"hello"],  # long array
    [b"a", b"b", b"a"],  # short array, kept in full
    [b"", b"x", b"[EMPTY_0]"],  # llama.cpp renames an empty token to [EMPTY_<i>]
])
def test_a_vocabulary_with_a_repeated_token_is_refused(tmp_path: Path,
                                                       tokens: list[bytes]) -> None:
    message = refused(write(tmp_path, build(vocabulary(tokens, model="gpt2"))))
    assert "twice" in message and "tokenizer.ggml.tokens" in message


def test_a_sentencepiece_vocabulary_without_a_byte_token_is_refused(tmp_path: Path) -> None:
    tokens = [b"<unk>", b"<s>", b"</s>", *BYTE_TOKENS]
    tokens[3 + 0x41] = b"<0xG1>"
    assert "lacks the byte token <0x41>" in refused(write(tmp_path, build(vocabulary(tokens))))
    tokens[3 + 0x41] = b"A"  # the bare byte does as well
    validate_gguf(write(tmp_path, build(vocabulary(tokens)), "bare.gguf"))


def test_other_vocabularies_need_no_byte_tokens(tmp_path: Path) -> None:
    header = validate_gguf(write(tmp_path, build(vocabulary([b"x", b"y"], model="gpt2"))))
    assert header.metadata["tokenizer.ggml.model"] == "gpt2"
    assert header.metadata["tokenizer.ggml.tokens"] == ["x", "y"]


def test_a_vocabulary_across_read_windows_is_read_whole(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_reader, "_WINDOW", 64)
    tokens = [b"<unk>", b"<s>", b"</s>", *BYTE_TOKENS, *(f"w{i}".encode() for i in range(500))]
    validate_gguf(write(tmp_path, build(vocabulary(tokens))))
    tokens.append(b"w17")
    assert "'w17' twice (entries 276 and 759)" in refused(
        write(tmp_path, build(vocabulary(tokens)), "twice.gguf"))


@pytest.mark.parametrize("eps", [-1e-5, float("nan"), float("inf")])
def test_a_normalisation_epsilon_llama_cpp_asserts_on_is_refused(tmp_path: Path,
                                                                 eps: float) -> None:
    kvs = [kv_str("general.architecture", "llama"),
           kv_f32("llama.attention.layer_norm_rms_epsilon", eps)]
    assert "layer_norm_rms_epsilon" in refused(write(tmp_path, build(kvs)))


def test_the_bundled_vocabulary_is_read_and_passes(bundled_model_path: Path) -> None:
    meta = read_metadata(bundled_model_path)
    assert meta.vocab_size == 49152
