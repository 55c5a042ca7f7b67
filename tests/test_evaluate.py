from conftest import make_lm

from ppo.tasks.data import Example
from ppo.tasks.evaluate import evaluate, is_correct, majority_vote, summarize


def test_majority_vote():
    assert majority_vote([3.0, 5.0, 3.0, None, None, None]) == 3.0  # None never wins
    assert majority_vote([5.0, 3.0, 3.0, 5.0]) == 5.0  # tie: the answer seen first
    assert majority_vote([None, None]) is None
    assert majority_vote([2.0000001, 2.0, 7.0]) == 2.0  # same number, tiny float noise


def test_summary_from_hand_made_predictions():
    records = [
        {"gold": 3.0, "answer": 3.0, "correct": True, "vote": 3.0, "pass": True},
        {"gold": 4.0, "answer": None, "correct": False, "vote": 4.0, "pass": True},
        {"gold": 5.0, "answer": 6.0, "correct": False, "vote": 6.0, "pass": True},
        {"gold": 1.0, "answer": 2.0, "correct": False, "vote": None, "pass": False},
    ]
    summary = summarize(records, k=4, tolerance=1e-2)
    assert summary == {"n": 4, "top1": 25.0, "answered": 75.0, "vote@4": 50.0, "pass@4": 75.0}
    assert is_correct(3.004, 3.0, 1e-2) and not is_correct(None, 3.0, 1e-2)


def test_evaluate_runs_on_a_tiny_model(tokenizer):
    examples = [Example("a b", 1.0), Example("c", 2.0), Example("x y z", 3.0)]
    summary, records = evaluate(make_lm(), tokenizer, examples, "reft", max_new_tokens=4, batch_size=2, k=3)
    assert summary["n"] == 3 and set(summary) >= {"top1", "vote@3", "pass@3"}
    assert [r["question"] for r in records] == ["a b", "c", "x y z"]  # original order despite length sorting
    assert all(len(r["samples"]) == 3 for r in records)
    assert 0.0 <= summary["pass@3"] <= 100.0
