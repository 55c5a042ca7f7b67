from conftest import make_lm, make_tokenizer

import ppo.tasks.sampled as sampled
from ppo.tasks.data import Example
from ppo.train.sampled_config import SampledSFTConfig


def test_each_sample_is_labelled_by_its_extracted_answer(monkeypatch):
    texts = ["The answer is 1", "The answer is 3", "no answer", "The answer is: 2.004"]
    monkeypatch.setattr(sampled, "decode_prompts", lambda lm, tok, prompts, *args, **kwargs: texts[: len(prompts)])
    examples = [Example("a b", 1.0), Example("c", 2.0)]
    rows = sampled.sample_and_label(make_lm(), make_tokenizer(), examples, SampledSFTConfig(k=2))
    assert [(r["question"], r["label"]) for r in rows] == [(0, 1.0), (0, 0.0), (1, 0.0), (1, 1.0)]
    assert rows[2]["prompt"] == "Question:\nc\nAnswer reasoning:\n" and rows[2]["answer"] == "no answer"


def test_samples_are_drawn_once_per_run_folder(tmp_path, monkeypatch):
    model = tmp_path / "model"
    make_lm().save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    drawn = []
    monkeypatch.setattr(sampled, "decode_prompts", lambda lm, tok, prompts, *a, **k: drawn.append(1) or ["x"] * 2)
    c = SampledSFTConfig(model=str(model), k=2, device="cpu")
    first = sampled.labelled_samples(c, [Example("a", 1.0)], tmp_path)
    assert sampled.labelled_samples(c, [Example("a", 1.0)], tmp_path) == first and len(drawn) == 1
