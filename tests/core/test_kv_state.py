"""KVStateCache: LRU order, capacity, size accounting."""

from __future__ import annotations

from llamadesk.core.kv_state import KVState, KVStateCache


def state(size: int, first_token: int = 1) -> KVState:
    return KVState(tokens=(first_token, 2, 3), data=b"x" * size)


def test_get_returns_what_was_put() -> None:
    cache = KVStateCache(100)
    saved = state(10)
    assert cache.put("a", saved)
    assert cache.get("a") is saved
    assert cache.get("b") is None
    assert cache.size_bytes == 10 and len(cache) == 1 and "a" in cache


def test_the_least_recently_used_goes_first() -> None:
    cache = KVStateCache(30)
    for key in "abc":
        cache.put(key, state(10))
    assert cache.keys() == ["a", "b", "c"]
    cache.get("a")  # a is used again: b is now the oldest
    assert cache.keys() == ["b", "c", "a"]
    cache.put("d", state(10))
    assert cache.keys() == ["c", "a", "d"]
    assert cache.get("b") is None
    assert cache.size_bytes == 30


def test_a_large_state_evicts_as_many_as_needed() -> None:
    cache = KVStateCache(100)
    for key in "abcd":
        cache.put(key, state(25))
    cache.put("big", state(70))
    assert cache.keys() == ["d", "big"]
    assert cache.size_bytes == 95


def test_a_state_over_the_capacity_is_refused_and_forgets_the_old_one() -> None:
    cache = KVStateCache(50)
    cache.put("a", state(20))
    cache.put("b", state(20))
    assert not cache.put("a", state(51))
    assert cache.get("a") is None, "an outdated state must not come back"
    assert cache.keys() == ["b"]
    assert cache.size_bytes == 20


def test_exactly_the_capacity_fits() -> None:
    cache = KVStateCache(50)
    assert cache.put("a", state(50))
    assert cache.size_bytes == 50


def test_replacing_a_state_counts_its_size_once() -> None:
    cache = KVStateCache(100)
    cache.put("a", state(40))
    cache.put("a", state(30, first_token=9))
    assert cache.size_bytes == 30
    got = cache.get("a")
    assert got is not None and got.tokens[0] == 9


def test_drop_and_clear() -> None:
    cache = KVStateCache(100)
    cache.put("a", state(10))
    cache.put("b", state(20))
    cache.drop("a")
    cache.drop("missing")
    assert cache.keys() == ["b"] and cache.size_bytes == 20
    cache.clear()
    assert cache.keys() == [] and cache.size_bytes == 0 and len(cache) == 0


def test_size_accounting_stays_exact_over_many_operations() -> None:
    cache = KVStateCache(1000)
    for i in range(500):
        key = f"k{i % 37}"
        if i % 11 == 0:
            cache.drop(key)
        else:
            cache.put(key, state((i * 53) % 400 + 1))
        if i % 5 == 0:
            cache.get(f"k{(i * 7) % 37}")
        held = [cache.get(k) for k in list(cache.keys())]
        assert cache.size_bytes == sum(s.size_bytes for s in held if s is not None)
        assert cache.size_bytes <= 1000
