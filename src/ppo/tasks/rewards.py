"""Rule-based rewards for numeric answers: extract the final answer, compare it with the gold one.

Two answer formats (the paper's section 3):
    ncot  natural-language chain of thought; the answer follows a trigger ("#### N", "The answer is: N")
    pcot  a Python program; the answer is what its `solution()` returns, run in `ppo.tasks.sandbox`

The reward of the original ReFT (no reward model):
    1.0  the extracted answer equals the gold answer within an absolute tolerance (1e-2)
    0.1  an answer was extracted but it is wrong        (the "partial" reward, numeric datasets only)
    0.0  no answer could be extracted, or the program failed
"""

from __future__ import annotations

import math
import numbers
import re

from .data import parse_number
from .sandbox import kernel_layers, run_programs

# The number after one of the answer triggers, e.g. "#### 1,234", "The answer is: $12.50."
_NUMBER = r"(-?\$?\s*-?(?:[0-9][0-9,]*)?\.?[0-9]+)"
_TRIGGERS = (
    re.compile(r"####\s*" + _NUMBER),
    re.compile(r"the answer is\s*:?\s*<?" + _NUMBER, re.IGNORECASE),  # SVAMP's CoT writes "<N>"
)


def answer_match(text: str) -> re.Match | None:
    """Where a chain of thought states its final answer: the last `#### N` or `The answer is: N` (also without the
    colon) whose N is a number, as in the original (`text.split(trigger)[-1]`); None when there is none."""
    matches = [m for pattern in _TRIGGERS for m in pattern.finditer(text)]
    return next((m for m in sorted(matches, key=lambda m: -m.start()) if parse_number(m.group(1)) is not None), None)


def extract_answer(text: str) -> float | None:
    """The final numeric answer of a chain of thought (`answer_match`), or None."""
    match = answer_match(text)
    return parse_number(match.group(1)) if match else None


def extract_program(text: str) -> str:
    """The program in a P-CoT response: the text itself, or the first fenced code block when there is one."""
    fenced = re.search(r"```(?:python)?\n(.*?)```", text, re.DOTALL)
    return fenced.group(1) if fenced else text


def number_from_value(value) -> float | None:
    """What `solution()` returned, as a finite float, else None ("no answer"); never raises.

    3 -> 3.0, 2.5 -> 2.5, "1,200" -> 1200.0, Fraction(1, 4) / Decimal("0.25") / numpy and sympy numbers -> 0.25.
    None for: True/False (Python counts them as 1/0; a word problem's answer is not a boolean), nan and inf,
    complex numbers, an integer too large for a float (10**400: no gold answer is near it), and non-numbers.
    """
    if isinstance(value, str):
        return parse_number(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Number)
        or (isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real))
    ):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return None
    return number if math.isfinite(number) else None


def check_executor(answer_format: str) -> None:
    """Before any work: P-CoT runs programs, so a kernel that cannot confine them fails now (ppo.tasks.sandbox)."""
    if answer_format == "pcot":
        kernel_layers()


def extract_answers(texts: list[str], answer_format: str = "ncot", timeout_s: float = 3.0) -> list[float | None]:
    """The final answer of each response: ncot reads the trigger, pcot runs the programs (in parallel)."""
    if answer_format == "ncot":
        return [extract_answer(t) for t in texts]
    if answer_format == "pcot":
        return [number_from_value(v) for v in run_programs([extract_program(t) for t in texts], timeout_s)]
    raise ValueError(f"unknown answer_format {answer_format!r}; choose ncot or pcot")


def score_answer(
    predicted: float | None,
    gold: float,
    tolerance: float = 1e-2,
    correct_score: float = 1.0,
    partial_score: float = 0.1,
) -> float:
    """1 / 0.1 / 0 as in the module docstring."""
    if predicted is None:
        return 0.0
    return correct_score if abs(predicted - gold) <= tolerance else partial_score


def score_responses(
    responses: list[str],
    golds: list[float],
    tolerance: float = 1e-2,
    correct_score: float = 1.0,
    partial_score: float = 0.1,
    answer_format: str = "ncot",
    timeout_s: float = 3.0,
) -> list[float]:
    """Score a batch of decoded responses against their gold answers."""
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
    answers = extract_answers(responses, answer_format, timeout_s)
    return [score_answer(a, g, tolerance, correct_score, partial_score) for a, g in zip(answers, golds)]
