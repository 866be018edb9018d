"""ReplyStream: incremental UTF-8 and stop strings with hold-back, fed token by token."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llamadesk.core.streaming import ReplyStream


def run(tokens: Sequence[bytes], stops: Sequence[str] = ()) -> tuple[list[str], ReplyStream]:
    """Feed every token (until a stop), then finish; return what each step released."""
    stream = ReplyStream(stops)
    out = []
    for token in tokens:
        out.append(stream.feed(token))
        if stream.stopped:
            break
    out.append(stream.finish())
    return out, stream


def test_plain_text_passes_through_at_once_without_stop_strings() -> None:
    out, stream = run([b"Hello", b", ", b"world"])
    assert out == ["Hello", ", ", "world", ""]
    assert stream.text == "Hello, world"
    assert not stream.stopped


def test_a_character_split_across_tokens_is_shown_whole() -> None:
    data = "café ☕ 𝄞".encode()
    tokens = [bytes([b]) for b in data]  # every byte its own token
    out, _stream = run(tokens)
    assert "".join(out) == "café ☕ 𝄞"
    assert all("\ufffd" not in piece for piece in out), "no half character is ever shown"
    # The 4-byte clef comes out in one piece, at its last byte.
    assert out[-2] == "𝄞"
    assert out[-5:-2] == ["", "", ""]


def test_an_unfinished_character_at_the_end_becomes_a_replacement() -> None:
    out, stream = run([b"ok ", "é".encode()[:1]])
    assert out == ["ok ", "", "\ufffd"]
    assert stream.text == "ok \ufffd"


def test_a_stop_string_split_across_tokens_is_cut_and_never_shown() -> None:
    out, stream = run([b"The answer", b" is 4.<|im", b"_e", b"nd|>", b"more"],
                      stops=["<|im_end|>"])
    assert stream.stopped
    assert stream.text == "The answer is 4."
    assert "".join(out) == "The answer is 4."
    assert all("<|" not in piece for piece in out)
    assert out[1] == " is 4.", "only the possible start of the stop string is held back"


def test_a_stop_string_at_the_very_start_leaves_nothing() -> None:
    out, stream = run([b"<|im_end|>", b"Hello"], stops=["<|im_end|>"])
    assert stream.stopped
    assert stream.text == ""
    assert out == ["", ""]


def test_a_stop_string_prefix_that_does_not_complete_is_released() -> None:
    out, stream = run([b"a <|i", b"m fine"], stops=["<|im_end|>"])
    assert out == ["a ", "<|im fine", ""]
    assert not stream.stopped


def test_held_back_text_is_released_at_the_end() -> None:
    out, stream = run([b"Done. <|im_"], stops=["<|im_end|>"])
    assert out == ["Done. ", "<|im_"]
    assert stream.text == "Done. <|im_"
    assert not stream.stopped


def test_overlapping_stop_strings_cut_at_the_earliest() -> None:
    # Alpaca's stop strings overlap: "\n### " begins "\n### Instruction:".
    stops = ["### Instruction:", "\n### "]
    _out, stream = run([b"Sure.\n##", b"# Instruction:", b" x"], stops=stops)
    assert stream.stopped and stream.text == "Sure."
    _out, stream = run([b"x", b"yz"], stops=["xyz", "yz"])
    assert stream.stopped and stream.text == ""


def test_a_stop_string_inside_one_token_keeps_the_text_before_it() -> None:
    _out, stream = run([b"Hi there\nUSER: next"], stops=["\nUSER:"])
    assert stream.stopped and stream.text == "Hi there"


def test_a_multibyte_stop_string_split_inside_a_character() -> None:
    stop = "«END»"
    data = ("Fin " + stop).encode()
    _out, stream = run([data[:5], data[5:6], data[6:]], stops=[stop])
    assert stream.stopped and stream.text == "Fin "


def test_input_after_the_stop_or_the_end_is_ignored() -> None:
    stream = ReplyStream(["STOP"])
    assert stream.feed(b"abc STOP def") == "abc "
    assert stream.feed(b"ghi") == ""
    assert stream.finish() == ""
    assert stream.text == "abc "
    stream = ReplyStream()
    stream.feed(b"x")
    stream.finish()
    assert stream.feed(b"y") == "" and stream.finish() == ""


def test_empty_stop_strings_are_ignored() -> None:
    _out, stream = run([b"abc"], stops=[""])
    assert stream.text == "abc" and not stream.stopped


@pytest.mark.parametrize("stops", [[], ["<|im_end|>", "<|im_start|>"], ["\nUSER:"]])
def test_a_long_reply_costs_work_in_proportion_to_its_length(stops: list[str]) -> None:
    token = b"word <|i"  # ends like the start of a stop string
    n = 20_000
    stream = ReplyStream(stops)
    longest = max((len(s) for s in stops), default=1)
    for _ in range(n):
        stream.feed(token)
        assert len(stream.pending) < longest
    stream.finish()
    assert len(stream.text) == n * len(token)
    # Every character is examined when it arrives and at most a stop string's length
    # more times while held back; re-joining the reply per token would be ~n² / 2.
    assert stream.examined <= n * (len(token) + longest)
