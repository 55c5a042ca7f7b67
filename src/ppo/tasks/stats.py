"""How sure an accuracy is: a 95 % interval for one model, and a paired test for two models on the same questions.

wilson_interval   the Wilson score interval of k right out of n (good at 0 %, 100 % and small n, unlike k/n +- 2 SE)
mcnemar_p         the exact two-sided McNemar test: of the questions exactly one model gets right, is the split
                  further from 50/50 than chance allows? Questions both get right or both get wrong say nothing
                  about which is better, so a paired test is sharper than comparing two intervals.
holm              Holm's step-down adjustment of a family of p-values: of ten tests at 0.05, one is "significant"
                  by chance about 40 % of the time; the adjusted p-values keep that chance at 5 % for the family.
"""

from __future__ import annotations

import math


def wilson_interval(right: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % (z = 1.96) Wilson score interval for a proportion, as fractions in [0, 1]."""
    if n < 1 or not 0 <= right <= n:
        raise ValueError(f"need 0 <= right <= n and n >= 1 (got {right} of {n})")
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: P(a split at least this uneven) for Binomial(only_a + only_b, 1/2)."""
    n, low = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(correct_a: list[bool], correct_b: list[bool]) -> dict:
    """Model B against model A on the same questions, in order: accuracy points gained, the discordant counts
    and McNemar's p."""
    if len(correct_a) != len(correct_b) or not correct_a:
        raise ValueError(f"a paired test needs the same questions on both sides (got {len(correct_a)} and "
                         f"{len(correct_b)})")  # fmt: skip
    only_a = sum(a and not b for a, b in zip(correct_a, correct_b))
    only_b = sum(b and not a for a, b in zip(correct_a, correct_b))
    return {"gain": 100.0 * (only_b - only_a) / len(correct_a), "only_a": only_a, "only_b": only_b,
            "p": mcnemar_p(only_a, only_b)}  # fmt: skip


def holm(ps: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: the i-th smallest is multiplied by (m - i), then made no smaller
    than the one before it, and capped at 1."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def interval_text(right: int, n: int) -> str:
    """'17.0 % [10.9, 25.5], n = 100'."""
    lo, hi = wilson_interval(right, n)
    return f"{100 * right / n:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}], n = {n}"
