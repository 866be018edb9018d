"""The KV shift planner: which tokens to drop and move so that the context holds the new
prompt's start (pure token lists; the engine's test runs it through llama.cpp)."""

from __future__ import annotations

from llamadesk.core.kv_shift import KVShift, common_prefix, plan_shift

SYSTEM = [1, 2, 3, 4]


def message(tag: int, length: int = 40) -> list[int]:
    """A message as a template renders it: the same opening token for every message."""
    return [900, tag] + [tag * 1000 + i for i in range(length)] + [901]


def shifted(old: list[int], shift: KVShift) -> list[int]:
    """What a context holding ``old`` holds after ``shift``."""
    return old[:shift.start] + old[shift.start + shift.removed:][:shift.kept]


def test_dropped_messages_are_removed_and_the_rest_moves_down() -> None:
    m1, m2, m3, m4 = (message(t) for t in (1, 2, 3, 4))
    old = SYSTEM + m1 + m2 + m3
    new = SYSTEM + m3 + m4  # m1 and m2 left the model's memory; m4 is new
    shift = plan_shift(old, new)
    assert shift is not None
    assert shift.removed == len(m1) + len(m2)
    assert shift.end == len(SYSTEM) + len(m3), "all of m3 is kept; only m4 is read"
    assert shifted(old, shift) == new[:shift.end]


def test_a_partly_matching_tail_keeps_what_matches() -> None:
    m1, m2, m3 = (message(t) for t in (1, 2, 3))
    reply_as_generated = message(7)
    reply_as_stored = [*reply_as_generated[:-5], 55, 56, 57]  # tokenized differently
    old = SYSTEM + m1 + m2 + reply_as_generated
    new = SYSTEM + m2 + reply_as_stored + m3
    shift = plan_shift(old, new)
    assert shift is not None
    assert shift.removed == len(m1)
    assert shift.end == len(SYSTEM) + len(m2) + len(reply_as_generated) - 5
    assert shifted(old, shift) == new[:shift.end]


def test_no_shift_when_the_prefix_already_holds_everything() -> None:
    old = SYSTEM + message(1)
    assert plan_shift(old, old + message(2)) is None
    assert plan_shift([], SYSTEM) is None


def test_no_shift_for_a_few_tokens_or_nothing_in_common() -> None:
    old = SYSTEM + message(1) + message(2, length=3)
    assert plan_shift(old, SYSTEM + message(2, length=3) + message(3)) is None, \
        "a tiny kept range is cheaper to read again"
    assert plan_shift(SYSTEM + message(1), SYSTEM + message(5)) is None


def test_the_longest_kept_range_wins() -> None:
    m1, m2, m3 = (message(t) for t in (1, 2, 3))
    # m2 appears twice in the old context: once alone, once followed by m3.
    old = SYSTEM + m2 + m1 + m2 + m3
    new = SYSTEM + m1 + m2 + m3 + message(9)
    shift = plan_shift(old, new)
    assert shift is not None and shift.removed == len(m2)
    assert shift.end == len(old) - len(m2)
    assert shifted(old, shift) == new[:shift.end]


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2
