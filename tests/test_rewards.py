import pytest

from ppo.rewards import extract_answer, parse_number, score_answer, score_responses


@pytest.mark.parametrize("text, value", [
    ("She has 3 + 4 = 7 apples.\n#### 7", 7.0),
    ("#### 1,234", 1234.0),
    ("so #### $12.50.", 12.5),
    ("Therefore, the answer is: 42", 42.0),
    ("The answer is: -3.5.", -3.5),
    ("the answer is 18", 18.0),
    ("The answer is: $1,000,000.", 1_000_000.0),
    ("#### 5\nThe answer is: 6", 6.0),           # the last answer wins, as in the original
    ("#### .5", 0.5),
    ("Therefore, the answer is <203>.", 203.0),
])
def test_extract_answer(text, value):
    assert extract_answer(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["no number here", "The answer is: seven", "####", "", "5 apples"])
def test_extract_answer_none(text):
    assert extract_answer(text) is None


def test_parse_number_rejects_non_finite():
    assert parse_number("inf") is None and parse_number("nan") is None and parse_number("1,2,3") == 123.0


def test_scores():
    assert score_answer(7.004, 7.0) == 1.0          # within 1e-2
    assert score_answer(7.02, 7.0) == 0.1           # extracted but wrong
    assert score_answer(None, 7.0) == 0.0
    assert score_responses(["#### 7", "#### 8", "hm"], [7.0, 7.0, 7.0]) == [1.0, 0.1, 0.0]
    with pytest.raises(ValueError):
        score_responses(["#### 7"], [7.0, 8.0])


PROGRAM = 'def solution():\n    """q"""\n    apples = 3\n    result = apples * 4\n    return result'


def test_pcot_answers_are_the_programs_return_values():
    from ppo.rewards import extract_answers
    texts = [PROGRAM, "```python\n" + PROGRAM + "\n```\nThat's it.", "def solution():\n    return '1,200'",
             "def solution():\n    return True", "def solution():\n    return 1 / 0", "no program here",
             "def solution():\n    return float('inf')"]
    assert extract_answers(texts, "pcot") == [12.0, 12.0, 1200.0, None, None, None, None]


def test_pcot_reward_is_one_tenth_zero_like_ncot():
    texts = [PROGRAM, PROGRAM, "def solution():\n    while True: pass"]
    assert score_responses(texts, [12.0, 13.0, 12.0], answer_format="pcot", timeout_s=0.5) == [1.0, 0.1, 0.0]
    with pytest.raises(ValueError, match="answer_format"):
        score_responses(["x"], [1.0], answer_format="latex")
