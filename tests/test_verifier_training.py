import pytest
import torch
from conftest import make_lm, make_tokenizer

from ppo.lm.policy import PolicyWithValue
from ppo.lm.scoring import head_scores
from ppo.tasks.rerank import load_scorer
from ppo.train.metrics import read_jsonl
from ppo.train.verifier_training import VerifierConfig, VerifierTrainer

ROWS = [("Question: x", "1", 1.0), ("Question: x", "2", 0.0), ("Question: y", "3", 0.0), ("Question: y", "4", 1.0)]


def test_a_verifier_trains_with_sfts_loop_and_saves_a_scorer(tmp_path):
    torch.manual_seed(0)
    tokenizer, policy = make_tokenizer(), PolicyWithValue(make_lm())
    config = VerifierConfig(output_dir=str(tmp_path), epochs=40.0, batch_size=2, grad_accum=2, lr=1e-2,
                            schedule="constant", warmup_ratio=0.0, device="cpu")  # fmt: skip
    history = VerifierTrainer(policy, tokenizer, config, lambda row: row).train(ROWS)
    assert len(history) == 40 and history[0]["tokens"] == 4  # a step's loss is a mean over its 4 answers
    assert history[-1]["loss"] < history[0]["loss"] / 4
    assert history[-1]["verifier/accuracy"] == 1.0  # all 4 answers of the last step, before its update
    assert history[-1]["verifier/p_right"] > 0.8 > 0.2 > history[-1]["verifier/p_wrong"]
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 40
    scorer, tok = load_scorer(str(tmp_path / "final"), device="cpu", dtype="float32")
    scores = head_scores(scorer, tok, [r[0] for r in ROWS], [r[1] for r in ROWS])
    assert scores[0] > scores[1] and scores[3] > scores[2]


def test_rows_longer_than_max_len_are_skipped(tmp_path, capsys):
    tokenizer, policy = make_tokenizer(), PolicyWithValue(make_lm())
    config = VerifierConfig(output_dir=str(tmp_path), max_len=4, epochs=1.0, batch_size=1, device="cpu")
    VerifierTrainer(policy, tokenizer, config, lambda row: row).train([*ROWS, ("Question: x y z", "1 2 3", 1.0)])
    assert "4 examples (1 skipped: longer than 4 tokens)" in capsys.readouterr().out  # 2 + 1 + EOS = 4 fits


@pytest.mark.parametrize("field, value", [("k", 0), ("max_new_tokens", 0), ("temperature", 0.0)])
def test_bad_sampling_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=f"--{field.replace('_', '-')} must be"):
        VerifierConfig(**{field: value})
