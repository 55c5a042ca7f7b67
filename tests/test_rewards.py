import pytest

from ppo.tasks.data import parse_number
from ppo.tasks.rewards import extract_answer, score_answer, score_responses


@pytest.mark.parametrize(
    "text, value",
    [
        ("She has 3 + 4 = 7 apples.\n#### 7", 7.0),
        ("#### 1,234", 1234.0),
        ("so #### $12.50.", 12.5),
        ("Therefore, the answer is: 42", 42.0),
        ("The answer is: -3.5.", -3.5),
        ("the answer is 18", 18.0),
        ("The answer is: $1,000,000.", 1_000_000.0),
        ("#### 5\nThe answer is: 6", 6.0),  # the last answer wins, as in the original
        ("#### .5", 0.5),
        ("Therefore, the answer is <203>.", 203.0),
    ],
)
def test_extract_answer(text, value):
    assert extract_answer(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["no number here", "The answer is: seven", "####", "", "5 apples"])
def test_extract_answer_none(text):
    assert extract_answer(text) is None


def test_parse_number_rejects_non_finite():
    assert parse_number("inf") is None and parse_number("nan") is None and parse_number("1,2,3") == 123.0


def test_scores():
    assert score_answer(7.004, 7.0) == 1.0  # within 1e-2
    assert score_answer(7.02, 7.0) == 0.1  # extracted but wrong
    assert score_answer(None, 7.0) == 0.0
    assert score_responses(["#### 7", "#### 8", "hm"], [7.0, 7.0, 7.0]) == [1.0, 0.1, 0.0]
    with pytest.raises(ValueError):
        score_responses(["#### 7"], [7.0, 8.0])


PROGRAM = 'def solution():\n    """q"""\n    apples = 3\n    result = apples * 4\n    return result'


def test_pcot_answers_are_the_programs_return_values():
    from ppo.tasks.rewards import extract_answers

    texts = [
        PROGRAM,
        "```python\n" + PROGRAM + "\n```\nThat's it.",
        "def solution():\n    return '1,200'",
        "def solution():\n    return True",
        "def solution():\n    return 1 / 0",
        "no program here",
        "def solution():\n    return float('inf')",
    ]
    assert extract_answers(texts, "pcot") == [12.0, 12.0, 1200.0, None, None, None, None]


def test_pcot_reward_is_one_tenth_zero_like_ncot():
    texts = [PROGRAM, PROGRAM, "def solution():\n    while True: pass"]
    assert score_responses(texts, [12.0, 13.0, 12.0], answer_format="pcot", timeout_s=0.5) == [1.0, 0.1, 0.0]
    with pytest.raises(ValueError, match="answer_format"):
        score_responses(["x"], [1.0], answer_format="latex")


def test_every_kind_of_return_value_becomes_a_number_or_no_answer():
    from decimal import Decimal
    from fractions import Fraction

    import numpy as np
    import sympy

    from ppo.tasks.rewards import number_from_value

    cases = [
        (3, 3.0),
        (2.5, 2.5),
        ("1,200", 1200.0),
        (Fraction(1, 4), 0.25),
        (Decimal("0.25"), 0.25),
        (np.float64(0.25), 0.25),
        (np.int64(7), 7.0),
        (sympy.Integer(7), 7.0),
        (sympy.Rational(1, 4), 0.25),
        (sympy.Float(0.25), 0.25),
        (10**300, 1e300),
    ]
    for value, number in cases:
        assert number_from_value(value) == number, repr(value)
    no_answer = [
        True,
        False,
        np.True_,
        10**400,
        -(10**400),
        Fraction(10**400, 3),
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("1e999999"),
        np.float32("inf"),
        3 + 0j,
        complex(1, 2),
        np.complex128(1),
        sympy.oo,
        sympy.nan,
        sympy.zoo,
        sympy.I,
        sympy.Symbol("x"),
        None,
        [1],
        {"a": 1},
    ]
    for value in no_answer:
        assert number_from_value(value) is None, repr(value)


def test_a_program_returning_any_of_them_is_scored_without_an_exception():
    """Integers too large for a float are no answer (0): no gold answer is near 10**400. Through the sandbox."""
    returns = [
        "10 ** 400",
        "math.factorial(171)",
        "-10 ** 400",
        "True",
        "float('nan')",
        "float('-inf')",
        "3 + 0j",
        "Fraction(1, 4)",
        "Decimal('2.5')",
        "Fraction(10 ** 400, 3)",
        "Decimal('sNaN')",
        "10 ** 300",
    ]
    head = "import math\nfrom fractions import Fraction\nfrom decimal import Decimal\n"
    programs = [f"{head}def solution():\n    return {r}" for r in returns]
    assert score_responses(programs, [0.25] * len(programs), answer_format="pcot") == [
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1.0,
        0.1,
        0,
        0,
        0.1,
    ]


def test_pcot_stages_fail_before_any_work_where_programs_cannot_be_confined(monkeypatch, tmp_path):
    from ppo.tasks import sandbox, sandbox_layers
    from ppo.tasks.rewards import check_executor
    from ppo.tasks.stages import run_ppo
    from ppo.train.config import PPOConfig

    monkeypatch.setattr(sandbox_layers, "seccomp_available", lambda: False)  # where kernel_layers looks it up
    monkeypatch.delenv(sandbox.UNSAFE, raising=False)
    sandbox.kernel_layers.cache_clear()
    try:
        check_executor("ncot")  # N-CoT runs no program: nothing to check
        config = PPOConfig(
            answer_format="pcot", model=str(tmp_path / "no-model"), output_dir=str(tmp_path / "out"), device="cpu"
        )
        with pytest.raises(sandbox.SandboxError, match="cannot be confined"):  # before the model is loaded
            run_ppo(config, [])
    finally:
        sandbox.kernel_layers.cache_clear()
