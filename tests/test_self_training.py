from conftest import make_lm, make_tokenizer

import ppo.tasks.sampled as sampled
from ppo.tasks.data import Example
from ppo.tasks.self_training import OfflineSTConfig, as_target, run_offline_st, with_own_answers

PROGRAM = 'def solution():\n    """q"""\n    result = 2\n    return result'


def test_a_right_sample_becomes_a_solution_without_its_answer_trigger():
    assert as_target("a b c\nTherefore, the answer is: 3", "ncot") == "a b c"
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
