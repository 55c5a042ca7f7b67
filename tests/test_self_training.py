import json

import pytest
from conftest import make_lm, make_tokenizer

import ppo.tasks.sampled as sampled
from ppo.tasks.data import Example
from ppo.tasks.self_training import (
    OfflineSTConfig,
    OnlineSTConfig,
    as_target,
    run_offline_st,
    run_online_st,
    with_own_answers,
)
from ppo.train.data_order import batch_indices
from ppo.train.metrics import read_jsonl

ANSWERS = [["The answer is 1", "The answer is 2"], ["x", "x"], ["The answer is 1", "The answer is 2"]]
PROGRAM = 'def solution():\n    """q"""\n    result = 2\n    return result'


def test_a_right_sample_becomes_a_solution_without_its_answer_trigger():
    assert as_target("a b c\nTherefore, the answer is: 3", "ncot") == "a b c"
    assert as_target("a b c. So the answer is 3.", "ncot") == "a b c."
    assert as_target("a b\n#### 3", "ncot") == "a b"
    assert as_target("the answer is 2, no: x y. The answer is 3", "ncot") == "the answer is 2, no: x y."  # the last
    assert as_target("a b c", "ncot") == "a b c"
    assert as_target(f"```python\n{PROGRAM}\n```\n", "pcot") == PROGRAM


def test_right_samples_are_added_once_each_and_never_as_a_copy_of_the_annotation():
    examples = [Example("q0", 3.0, "a b"), Example("q1", 4.0, "c")]
    rows = [
        {"question": 0, "answer": "x y\nTherefore, the answer is: 3", "label": 1.0},
        {"question": 0, "answer": "x y\nTherefore, the answer is: 3", "label": 1.0},  # a duplicate
        {"question": 0, "answer": "a b\nTherefore, the answer is: 3", "label": 1.0},  # the annotation itself
        {"question": 1, "answer": "x y\nTherefore, the answer is: 4", "label": 1.0},  # same text, another question
        {"question": 1, "answer": "z\nTherefore, the answer is: 5", "label": 0.0},  # wrong
    ]
    data, added = with_own_answers(examples, rows, "ncot")
    assert added == 2 and data[:2] == examples
    assert data[2:] == [Example("q0", 3.0, "x y"), Example("q1", 4.0, "x y")]


def test_a_sample_equal_to_the_annotation_as_trained_on_is_not_added():
    natalia = "She sold 48/2 = <<48/2=24>>24 clips."  # trained on without the calculator note
    rows = [{"question": 0, "answer": "She sold 48/2 = 24 clips.\nTherefore, the answer is: 24", "label": 1.0}]
    assert with_own_answers([Example("q", 24.0, natalia)], rows, "ncot")[1] == 0


def test_offline_st_runs_sft_on_the_annotations_and_its_own_right_answers(tmp_path, monkeypatch, capsys):
    model = tmp_path / "sft"
    make_lm().save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    texts = ["x y The answer is 1", "b The answer is 5", "z The answer is 2", "x"]
    monkeypatch.setattr(sampled, "decode_prompts", lambda lm, tok, prompts, *a, **k: texts[: len(prompts)])
    examples = [Example("a b", 1.0, "a b c"), Example("c", 2.0, "c c")]
    config = OfflineSTConfig(model=str(model), k=2, epochs=1.0, batch_size=2, device="cpu",
                             output_dir=str(tmp_path / "offline"))  # fmt: skip
    final = run_offline_st(config, examples)
    out = capsys.readouterr().out
    assert final == str(tmp_path / "offline" / "sft" / "final") and (tmp_path / "offline" / "sft" / "final").is_dir()
    assert "2 annotated examples + 2 right samples of their own" in out and "[sft] 4 examples" in out
    assert run_offline_st(config, examples) == final  # done: skipped


def test_online_st_takes_an_sft_step_on_each_steps_right_answers(tmp_path, monkeypatch):
    model = tmp_path / "sft"
    make_lm().save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    answers = iter(ANSWERS[:2])  # the run dies in its third step, after the checkpoint of step 2

    def fake_decode(lm, tok, prompts, *args, **kwargs):
        texts = next(answers, None)
        if texts is None:
            raise RuntimeError("the sitting ended")
        return texts

    monkeypatch.setattr(sampled, "decode_prompts", fake_decode)
    examples = [Example("a b", 1.0, "a"), Example("c", 2.0, "c")]
    config = OnlineSTConfig(model=str(model), k=2, questions_per_step=1, epochs=1.5, batch_size=2, save_every=2,
                            device="cpu", output_dir=str(tmp_path / "online"))  # fmt: skip
    assert config.total_steps(len(examples)) == 3  # 1.5 passes over 2 questions, 1 question a step
    with pytest.raises(RuntimeError, match="the sitting ended"):
        run_online_st(config, examples)
    assert (tmp_path / "online" / "checkpoint-2").is_dir()
    answers = iter(ANSWERS[2:])
    final = run_online_st(config, examples)  # resumed at step 3
    rows = read_jsonl(tmp_path / "online" / "metrics.jsonl")
    golds = [examples[i].answer for step in range(3) for i in batch_indices(2, 1, step, 0)]
    kept = [sum(a == f"The answer is {g:g}" for a in texts) for g, texts in zip(golds, ANSWERS)]
    assert [r["online/kept"] for r in rows] == kept and [r["step"] for r in rows] == [1, 2, 3]
    assert [("loss" in r) for r in rows] == [k > 0 for k in kept]  # no right answer: no update, the step counted
    assert run_online_st(config, examples) == final  # done: skipped


def test_online_st_settings_are_checked():
    with pytest.raises(ValueError, match="--questions-per-step must be"):
        OnlineSTConfig(questions_per_step=0)
    for name, value in (("grad_accum", 2), ("fsdp", True)):  # refused, never ignored
        with pytest.raises(ValueError, match=f"--{name.replace('_', '-')} is not supported by this stage yet"):
            OnlineSTConfig(**{name: value})


def test_online_st_scores_dev_on_its_schedule_and_returns_the_best(tmp_path, monkeypatch):
    model = tmp_path / "sft"
    make_lm().save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    monkeypatch.setattr(sampled, "decode_prompts", lambda lm, tok, prompts, *a, **k: ["The answer is 1"] * len(prompts))
    scores = iter([30.0, 50.0, 40.0])
    config = OnlineSTConfig(model=str(model), k=1, questions_per_step=1, epochs=2.5, batch_size=2, eval_every=2,
                            device="cpu", output_dir=str(tmp_path / "online"))  # fmt: skip
    best = run_online_st(config, [Example("a b", 1.0, "a"), Example("c", 1.0, "c")], lambda lm, tok: next(scores))
    rows = read_jsonl(tmp_path / "online" / "metrics.jsonl")
    assert [(r["step"], r.get("eval/dev_score")) for r in rows] == [
        (1, None),
        (2, 30.0),
        (3, None),
        (4, 50.0),
        (5, 40.0),
    ]  # every 2 steps, and the last
    assert best == str(tmp_path / "online" / "best") and (tmp_path / "online" / "best" / "model.safetensors").is_file()
    assert run_online_st(config, [], lambda lm, tok: 0.0) == best  # done: skipped, and still the best


def test_offline_st_draws_from_the_first_questions_and_trains_a_set_number_of_examples(tmp_path, monkeypatch):
    model = tmp_path / "sft"
    make_lm().save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    drawn = []
    monkeypatch.setattr(
        sampled,
        "decode_prompts",
        lambda lm, tok, prompts, *a, **k: drawn.extend(prompts) or ["The answer is 1"] * len(prompts),
    )
    examples = [Example("a b", 1.0, "a"), Example("c", 1.0, "c"), Example("d", 2.0, "d")]
    config = OfflineSTConfig(model=str(model), k=1, sample_questions=2, sft_examples=6, batch_size=2, device="cpu",
                             output_dir=str(tmp_path / "offline"))  # fmt: skip
    run_offline_st(config, examples)
    assert len(drawn) == 2 and "d" not in drawn[-1]  # only the first 2 questions, 1 answer each
    assert len(read_jsonl(tmp_path / "offline" / "sft" / "metrics.jsonl")) == 3  # 6 of 5 examples, 2 a step
    timing = json.loads((tmp_path / "offline" / sampled.TIMING_FILE).read_text())
    assert timing["answers"] == 2 and sampled.sampling_minutes(tmp_path / "offline") == timing["sample_s"] / 60
