import json

import pytest
from conftest import SHARED_DATA, make_lm, make_tokenizer

import ppo.tasks.sampled as sampled
import ppo.tasks.verifier_stage as stage
from ppo.tasks.data import Example
from ppo.tasks.rerank import has_head
from ppo.train.metrics import read_jsonl
from ppo.train.verifier_training import VerifierConfig, VerifierTrainer

EXAMPLES = [Example("a b", 1.0), Example("c", 2.0)]


def fake_answers(monkeypatch, texts):
    """decode_prompts replaced by fixed answers, so that the labels are known."""
    monkeypatch.setattr(sampled, "decode_prompts", lambda lm, tok, prompts, *args, **kwargs: texts[: len(prompts)])


def test_labels_of_one_kind_are_refused():
    assert stage.check_labels([{"label": 1.0}, {"label": 0.0}, {"label": 0.0}]) == "3 answers, 1 right (33.3 %)"
    with pytest.raises(ValueError, match="all 2 sampled answers are wrong"):
        stage.check_labels([{"label": 0.0}, {"label": 0.0}])


def test_the_stage_samples_once_trains_and_skips_when_done(tmp_path, monkeypatch, capsys):
    model = tmp_path / "sft"
    make_lm().save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    fake_answers(monkeypatch, ["The answer is 1", "The answer is 5", "The answer is 2", "x"])
    config = VerifierConfig(model=str(model), k=2, epochs=2.0, batch_size=2, device="cpu",
                            output_dir=str(tmp_path / "verifier"))  # fmt: skip
    final = stage.run_verifier(config, EXAMPLES)
    assert has_head(final) and "[verifier] 4 answers, 2 right (50.0 %)" in capsys.readouterr().out
    samples = (tmp_path / "verifier" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line)["label"] for line in samples] == [1.0, 0.0, 1.0, 0.0]
    fake_answers(monkeypatch, [])  # a rerun neither samples nor trains
    assert stage.run_verifier(config, EXAMPLES) == final
    with pytest.raises(ValueError, match="--k"):  # and other settings in the same folder are refused
        stage.run_verifier(VerifierConfig(**{**config.__dict__, "k": 3}), EXAMPLES)


def test_an_interrupted_verifier_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    model = tmp_path / "sft"
    make_lm().save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    fake_answers(monkeypatch, ["The answer is 1", "The answer is 5", "The answer is 2", "x"])
    config = VerifierConfig(model=str(model), k=2, epochs=1.5, batch_size=2, save_every=2, device="cpu",
                            output_dir=str(tmp_path / "verifier"))  # fmt: skip
    steps = []
    real_step = VerifierTrainer.step

    def dies_at_step_3(self, rows, lr):
        if self.step_count == 2 and not steps:
            steps.append("died")
            raise RuntimeError("the sitting ended")
        return real_step(self, rows, lr)

    monkeypatch.setattr(VerifierTrainer, "step", dies_at_step_3)
    with pytest.raises(RuntimeError, match="the sitting ended"):
        stage.run_verifier(config, EXAMPLES)
    assert (tmp_path / "verifier" / "checkpoint-2").is_dir()
    stage.run_verifier(config, EXAMPLES)
    assert [r["step"] for r in read_jsonl(tmp_path / "verifier" / "metrics.jsonl")] == [1, 2, 3]


def test_the_verifier_refuses_what_it_would_ignore():
    with pytest.raises(ValueError, match="--fsdp is not supported by this stage yet"):
        VerifierConfig(fsdp=True)


def test_the_command_checks_its_settings_before_any_model_loads(capsys):
    with pytest.raises(SystemExit) as exit_info:
        stage.main(["--data-dir", str(SHARED_DATA / "gsm8k"), "--k", "0"])
    assert exit_info.value.code == 2 and "--k must be an integer >= 1" in capsys.readouterr().err
