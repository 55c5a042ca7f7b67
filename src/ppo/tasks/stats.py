"""How sure an accuracy is: a 95 % interval for one model, and a paired test for two models on the same questions.

wilson_interval   the Wilson score interval of k right out of n (good at 0 %, 100 % and small n, unlike k/n +- 2 SE)
mcnemar_p         the exact two-sided McNemar test: of the questions exactly one model gets right, is the split
                  further from 50/50 than chance allows? Questions both get right or both get wrong say nothing
                  about which is better, so a paired test is sharper than comparing two intervals.
holm              Holm's step-down adjustment of a family of p-values: of ten tests at 0.05, one is "significant"
                  by chance about 40 % of the time; the adjusted p-values keep that chance at 5 % for the family.
pooled_sd         the spread of repeated runs of one setting around its mean, pooled over settings, with a
                  chi-square interval (sd_interval): how far runs of the same configuration scatter by chance
detectable        the smallest difference of two means that a two-sided test finds with the given power (Student's t)
mean_difference   the difference of two settings' mean scores over their runs, with its interval and p-value, at a
                  pooled sd: the test of settings, where McNemar's test is one of two single runs
"""

from __future__ import annotations

import math
import statistics
from statistics import NormalDist


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


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X ~ chi-square with an integer df, in closed form (Abramowitz and Stegun 26.4.4, 26.4.5): the
    normal tail plus a series for odd df, a Poisson sum for even df. Each term is taken in logs, so no power or
    factorial overflows at large df."""
    if df < 1 or x < 0:
        raise ValueError(f"need df >= 1 and x >= 0 (got df = {df}, x = {x})")
    h = x / 2
    if x == 0:
        return 1.0
    if df % 2 == 0:
        return sum(math.exp(-h + j * math.log(h) - math.lgamma(j + 1)) for j in range(df // 2))
    series = sum(math.exp(-h + (j - 0.5) * math.log(h) - math.lgamma(j + 0.5)) for j in range(1, (df + 1) // 2))
    return math.erfc(math.sqrt(h)) + series


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with an integer df, in closed form (Abramowitz and Stegun 26.7.3, 26.7.4): with
    theta = atan(t / sqrt(df)), P(|T| <= |t|) is a finite series in cos(theta)."""
    if df < 1:
        raise ValueError(f"need df >= 1 (got {df})")
    theta = math.atan(abs(t) / math.sqrt(df))
    c2, term, series = math.cos(theta) ** 2, 1.0, 1.0
    if df % 2 == 0:  # sin(theta) (1 + 1/2 cos^2 + 1.3/(2.4) cos^4 + ... up to cos^(df-2))
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            series += term
        inside = math.sin(theta) * series
    else:  # 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2.4/(3.5) cos^4 + ... up to cos^(df-3))), theta alone at df = 1
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            series += term
        inside = 2 / math.pi * (theta + (math.sin(theta) * math.cos(theta) * series if df > 1 else 0.0))
    return 0.5 + math.copysign(inside / 2, t)


def quantile(cdf, q: float, low: float, high: float) -> float:
    """The x in [low, high] with cdf(x) = q, by bisection (cdf rising in x)."""
    if not 0 < q < 1:
        raise ValueError(f"need a probability strictly between 0 and 1 (got {q})")
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
    return (low + high) / 2


def chi2_quantile(q: float, df: int) -> float:
    """The x with P(X <= x) = q for X ~ chi-square(df)."""
    return quantile(lambda x: 1 - chi2_sf(x, df), q, 0.0, df + 50.0 * math.sqrt(df) + 50.0)


def t_quantile(q: float, df: int) -> float:
    """The t with P(T <= t) = q for Student's t(df)."""
    return quantile(lambda t: t_cdf(t, df), q, -1e6, 1e6)


def pooled_sd(groups: list[list[float]]) -> tuple[float, int]:
    """The SD of one run around its setting's mean, pooled over groups of repeated runs (each group one setting),
    and its degrees of freedom: s^2 = sum (n_i - 1) var_i / sum (n_i - 1). Groups of one run add nothing. Two
    runs of one setting then differ with an SD of s sqrt(2)."""
    repeated = [g for g in groups if len(g) > 1]
    if not repeated:
        raise ValueError("need a group of at least two runs")
    df = sum(len(g) - 1 for g in repeated)
    return math.sqrt(sum((len(g) - 1) * statistics.variance(g) for g in repeated) / df), df


def sd_interval(sd: float, df: int, level: float = 0.95) -> tuple[float, float]:
    """The interval for the true SD from a pooled sd with df degrees of freedom (df s^2 / sigma^2 ~ chi-square)."""
    tail = (1 - level) / 2
    return sd * math.sqrt(df / chi2_quantile(1 - tail, df)), sd * math.sqrt(df / chi2_quantile(tail, df))


def detectable(sd: float, n_a: int, n_b: int, df: int | None = None, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference between the means of n_a and n_b runs (each with spread sd) that a two-sided
    test at alpha finds with the given power: (q_{1-alpha/2} + q_power) sd sqrt(1/n_a + 1/n_b), with the quantiles
    of Student's t at the df that sd was estimated with (the usual approximation), or of the normal if df is None."""
    q = NormalDist().inv_cdf if df is None else (lambda p: t_quantile(p, df))
    return (q(1 - alpha / 2) + q(power)) * sd * math.sqrt(1 / n_a + 1 / n_b)


def mean_difference(a: list[float], b: list[float], sd: float, df: int, level: float = 0.95) -> dict:
    """mean(a) - mean(b), runs of two settings, with its interval and two-sided p from Student's t at df, taking sd
    (pooled_sd over repeated runs, df its degrees of freedom) as every run's spread around its setting's mean:
    se = sd sqrt(1/n_a + 1/n_b). Runs scored on the same questions: it asks whether another seed would repeat the
    gap, not whether other questions would."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    se = sd * math.sqrt(1 / len(a) + 1 / len(b))
    half = t_quantile(1 - (1 - level) / 2, df) * se
    return {"diff": diff, "low": diff - half, "high": diff + half, "p": 2 * (1 - t_cdf(abs(diff) / se, df))}
