import json

import pytest
import torch
from conftest import SHARED_DATA, make_lm, make_tokenizer

from ppo.lm.policy import PolicyWithValue
from ppo.lm.scoring import head_scores
from ppo.tasks.data import Example
from ppo.tasks.evaluate import evaluate, is_correct, main, majority_vote, summarize
from ppo.tasks.formats import format_prompt
from ppo.tasks.rerank import rerank


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


def test_rerank_at_k_in_the_summary_from_hand_made_predictions():
    records = [
        {"gold": 3.0, "answer": 3.0, "correct": True, "vote": 3.0, "pass": True, "rerank_critic": 3.0},
        {"gold": 4.0, "answer": None, "correct": False, "vote": 5.0, "pass": True, "rerank_critic": 4.0},
        {"gold": 5.0, "answer": 6.0, "correct": False, "vote": 6.0, "pass": True, "rerank_critic": None},
    ]
    summary = summarize(records, k=2, tolerance=1e-2)
    assert summary["rerank_critic@2"] == pytest.approx(200 / 3) and summary["vote@2"] == pytest.approx(100 / 3)


def test_each_scorer_scores_every_sample_and_picks_one(tokenizer):
    examples = [Example("a b", 1.0), Example("c", 2.0)]
    policy = PolicyWithValue(make_lm(1))
    torch.nn.init.normal_(policy.value_head.weight)
    _, records = evaluate(make_lm(), tokenizer, examples, "reft", max_new_tokens=4, batch_size=2, k=3,
                          scorers={"critic": (policy, tokenizer)})  # fmt: skip
    for r in records:
        prompt = format_prompt(r["question"], "reft")
        assert r["scores_critic"] == pytest.approx(head_scores(policy, tokenizer, [prompt] * 3, r["samples"]), abs=1e-5)
        assert r["rerank_critic"] == rerank(r["sample_answers"], r["scores_critic"])


def test_ppo_evaluate_reranks_with_a_checkpoints_critic_and_a_verifier(tmp_path, capsys):
    tokenizer = make_tokenizer()
    for name, seed in (("reft", 0), ("verifier", 1)):
        policy = PolicyWithValue(make_lm(seed))
        torch.nn.init.normal_(policy.value_head.weight)
        policy.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    main(["--model", str(tmp_path / "reft"), "--data-dir", str(SHARED_DATA / "gsm8k"), "--limit", "2", "--k", "2",
          "--max-new-tokens", "3", "--rerank-critic", "--verifier", str(tmp_path / "verifier"), "--device", "cpu",
          "--output-dir", str(tmp_path / "eval")])  # fmt: skip
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert {"rerank_critic@2", "rerank_verifier@2", "vote@2", "pass@2"} <= set(summary)
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert all(len(r["scores_critic"]) == len(r["scores_verifier"]) == 2 for r in rows)
    assert rows[0]["scores_critic"] != rows[0]["scores_verifier"]  # two different heads
