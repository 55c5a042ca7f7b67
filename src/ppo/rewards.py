"""Rule-based rewards for numeric answers (N-CoT): extract the final answer, compare it with the gold one.

The reward of the original ReFT (no reward model):
    1.0  the extracted answer equals the gold answer within an absolute tolerance (1e-2)
    0.1  an answer was extracted but it is wrong        (the "partial" reward, numeric datasets only)
    0.0  no answer could be extracted
"""
from __future__ import annotations

import math
import re

# The number after one of the answer triggers, e.g. "#### 1,234", "The answer is: $12.50."
_NUMBER = r"(-?\$?\s*-?(?:[0-9][0-9,]*)?\.?[0-9]+)"
_TRIGGERS = (
    re.compile(r"####\s*" + _NUMBER),
    re.compile(r"the answer is\s*:?\s*<?" + _NUMBER, re.IGNORECASE),   # SVAMP's CoT writes "<N>"
)


def parse_number(text: str) -> float | None:
    """'1,234' -> 1234.0, '$12.50.' -> 12.5, '-3' -> -3.0; None when it is not a finite number."""
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def extract_answer(text: str) -> float | None:
    """The final numeric answer of a chain of thought, or None.

    Understands the GSM8K marker `#### N` and the ReFT trigger `The answer is: N` (also without the colon).
    When several appear, the last one wins, as in the original (`text.split(trigger)[-1]`).
    """
    matches = [m for pattern in _TRIGGERS for m in pattern.finditer(text)]
    for match in sorted(matches, key=lambda m: m.start(), reverse=True):
        value = parse_number(match.group(1))
        if value is not None:
            return value
    return None


def score_answer(predicted: float | None, gold: float, tolerance: float = 1e-2,
                 correct_score: float = 1.0, partial_score: float = 0.1) -> float:
    """1 / 0.1 / 0 as in the module docstring."""
    if predicted is None:
        return 0.0
    return correct_score if abs(predicted - gold) <= tolerance else partial_score


def score_responses(responses: list[str], golds: list[float], tolerance: float = 1e-2,
                    correct_score: float = 1.0, partial_score: float = 0.1) -> list[float]:
    """Score a batch of decoded responses against their gold answers."""
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
    return [score_answer(extract_answer(r), g, tolerance, correct_score, partial_score)
            for r, g in zip(responses, golds)]
