import pytest
import torch
from conftest import make_lm, make_tokenizer

from ppo.lm.policy import PolicyWithValue
from ppo.lm.scoring import head_scores
from ppo.tasks.rerank import has_head, load_scorer, rerank


def test_the_highest_scored_answer_is_kept():
    assert rerank([1.0, 2.0, 3.0], [0.1, 0.9, 0.5]) == 2.0


def test_a_tie_goes_to_the_earliest_sample():
    assert rerank([1.0, 2.0, 3.0], [0.2, 0.9, 0.9]) == 2.0
    assert rerank([4.0, 5.0], [0.0, 0.0]) == 4.0


def test_samples_without_an_answer_are_passed_over():
    assert rerank([None, 2.0, None], [5.0, -1.0, 7.0]) == 2.0
    assert rerank([None, None], [1.0, 2.0]) is None
    with pytest.raises(ValueError, match="2 answers but 1 scores"):
        rerank([1.0, 2.0], [0.5])


def test_a_scorer_is_a_checkpoint_with_a_trained_head(tmp_path):
    tok, policy = make_tokenizer(), PolicyWithValue(make_lm())
    policy.lm.save_pretrained(tmp_path / "plain")
    tok.save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="has no value_head.safetensors"):
        load_scorer(str(tmp_path / "plain"), device="cpu", dtype="float32")
    policy.save_pretrained(tmp_path / "grpo")  # a critic-free run saves its head untouched: all zeros
    with pytest.raises(ValueError, match="never trained"):
        load_scorer(str(tmp_path / "grpo"), device="cpu", dtype="float32")
    assert not has_head(str(tmp_path / "grpo")) and not has_head(str(tmp_path / "plain"))
    torch.nn.init.normal_(policy.value_head.weight)
    policy.save_pretrained(tmp_path / "reft")
    tok.save_pretrained(tmp_path / "reft")
    loaded, loaded_tok = load_scorer(str(tmp_path / "reft"), device="cpu", dtype="float32")
    prompts, answers = ["Question: x", "Question: y"], ["1 2", "3"]
    assert head_scores(loaded, loaded_tok, prompts, answers) == pytest.approx(
        head_scores(policy, tok, prompts, answers)
    )
