"""The best ``k`` BM25 matches of an OR of words, without scoring every match.

FTS5's ``bm25()`` reads each match's length and word positions, so an OR of four words
found in a quarter of the passages each scores some 60,000 rows to keep five. Its score
of a row depends only on that row and the list of phrases in the query, and a word
absent from the row adds nothing; so the rows holding exactly the words ``S`` score the
same under the AND of ``S`` as under the OR of every word. Each word adds less than
``idf × (k1 + 1)`` (its term-frequency part tends to ``k1 + 1``), which bounds the score
of any row holding only ``S``. Subsets are queried, best bound first, each with ORDER BY
and LIMIT inside FTS5, and the search stops when the next bound cannot beat the ``k``-th
score found: the same rows and scores as the plain OR query (MaxScore, on subsets).

A row found through a subset of its words gets a lower score there than its own; it is
then already among the results of that superset's query (queried earlier: its bound is
higher), or ``k`` rows beat it there, so keeping each row's best score is exact.

When the subsets that may still matter would cost more than scoring every match (many
common words), the plain OR query runs instead; the estimate counts posting-list entries
read and rows scored.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence

#: FTS5's bm25 parameters (fixed in its source) and the bound of one word's part.
K1 = 1.2
WORD_BOUND = K1 + 1.0
#: Scoring a match costs about this many posting-list entries read (measured on
#: 100,000 chunks: ~0.45 µs a row against ~0.08 µs an entry).
SCORE_COST = 5.0
#: More words than this: 2^n subsets, not worth planning; the plain query runs.
MAX_WORDS = 8

#: run(match expression, k) -> (rowid, bm25 score) rows, best (lowest) first.
Run = Callable[[str, int], list[tuple[int, float]]]


def idf(total: int, hits: int) -> float:
    """FTS5's inverse document frequency, clamped as it clamps it."""
    value = math.log((total - hits + 0.5) / (hits + 0.5))
    return value if value > 0.0 else 1e-6


def best(run: Run, terms: Sequence[str], counts: dict[str, int], total: int, k: int,
         where: str = "") -> list[tuple[int, float]]:
    """The best ``k`` (rowid, score) of ``"t1" OR "t2" …`` (plus ``where``, a filter that
    adds no score, such as a ``coll`` column match), best first; ``counts`` gives how
    many rows hold each term (exactly: a word counted absent is skipped)."""
    live = [t for t in terms if counts.get(t, 0) > 0]
    if not live or k <= 0:
        return []
    if len(live) == 1 or len(live) > MAX_WORDS:
        return run(_expr(live, " OR ", where), k)
    bound = {t: idf(total, counts[t]) * WORD_BOUND for t in live}
    share = {t: counts[t] / total for t in live}
    plan = sorted(((sum(bound[t] for t in s) * (1 + 1e-9), s)
                   for r in range(len(live), 0, -1)
                   for s in itertools.combinations(live, r)), key=lambda p: -p[0])
    costs = [sum(counts[t] for t in s) + SCORE_COST * total * math.prod(share[t] for t in s)
             for _, s in plan]
    before = list(itertools.accumulate(costs, initial=0.0))  # cost of plan[:i]
    falling = [-b for b, _ in plan]  # ascending, for bisect
    union = total * (1.0 - math.prod(1.0 - share[t] for t in live))
    full_cost = sum(counts[t] for t in live) + SCORE_COST * union
    found: dict[int, float] = {}
    for i, (subset_bound, subset) in enumerate(plan):
        theta = _kth(found, k)
        # A row holding only ``subset`` scores above -subset_bound (scores are negative).
        if theta is not None and subset_bound <= -theta:
            break
        # Still to run: every subset whose bound beats the k-th score (all of them
        # may, while fewer than k rows are found: then only this one is counted).
        last = bisect.bisect_left(falling, theta) if theta is not None else i + 1
        if before[last] > full_cost:
            return run(_expr(live, " OR ", where), k)
        for rowid, score in run(_expr(list(subset), " AND ", where), k):
            if score < found.get(rowid, 0.0):
                found[rowid] = score
    return sorted(found.items(), key=lambda pair: (pair[1], pair[0]))[:k]


def _kth(found: dict[int, float], k: int) -> float | None:
    if len(found) < k:
        return None
    return sorted(found.values())[k - 1]


def _expr(terms: list[str], joiner: str, where: str) -> str:
    quoted = joiner.join(f'"{t}"' for t in terms)
    return f"({quoted}){where}"
