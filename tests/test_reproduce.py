"""The SVAMP experiment (ppo.lab.reproduce) end to end on a tiny random Llama: the warm-up, the arms at an equal
budget with dev selection on their schedule, the records a later sitting resumes from, and the report."""

import importlib.util
import json

import pytest
from conftest import SHARED_DATA, make_lm, make_tokenizer

from ppo.lab.arms import arm_config, fingerprint
from ppo.lab.machine import cpu_name
from ppo.lab.reproduce import ReproduceConfig, run_reproduce
from ppo.lab.reproduce_config import recorded_runs
from ppo.lab.reproduce_report import table
from ppo.train.cli import command, parse_config

SVAMP = SHARED_DATA / "svamp"


def tiny(tmp_path, **kw) -> ReproduceConfig:
    model = tmp_path / "base"
    if not model.is_dir():
        make_lm().save_pretrained(model)
        make_tokenizer().save_pretrained(model)
    settings = dict(model=str(model), data_dir=str(SVAMP), train_questions=8, dev_size=6, test_questions=10,
                    samples=16, completions_per_step=4, group=2, points=2, max_new_tokens=4, eval_max_new_tokens=4,
                    micro_batch_size=4, eval_batch_size=8, lr=1e-4, runs="reft:0,sft-continued:0,grpo:0",
                    output_dir=str(tmp_path / "runs"), record_dir=str(tmp_path / "record"))  # fmt: skip
    return ReproduceConfig(**{**settings, **kw})


def test_every_arm_gets_the_same_budget_and_schedule(tmp_path):
    c = tiny(tmp_path, samples=32, lam=1.0)
    reft, grpo, sft = (arm_config(c, arm, 0, "warm") for arm in ("reft", "grpo", "sft-continued"))
    for rl in (reft, grpo):  # the same sampled answers per step and in all, scored on dev at the same steps
        assert rl.rollout_batch_size * rl.samples_per_prompt == 4 and rl.steps == 8 and rl.eval_every == 4
        assert rl.model == "warm" and rl.lr == c.lr and rl.kl_coef == c.kl_coef
    assert (reft.samples_per_prompt, reft.advantage, reft.ppo_epochs, reft.kl_in, reft.lam) == (
        1,
        "gae",
        2,
        "reward",
        1.0,
    )
    assert (grpo.samples_per_prompt, grpo.advantage, grpo.ppo_epochs, grpo.kl_in) == (2, "grpo", 1, "loss")
    # SFT-continued passes over the questions as often as ReFT does (32 answers to 8 questions: 4 passes)
    assert sft.epochs == 4.0 and sft.eval_every == 32 // 8 // 2 and sft.model == "warm"
    # Offline-ST draws the same 32 answers up front (4 to each of the 8 questions), then trains SFT-continued's steps
    offline, online = arm_config(c, "offline-st", 0, "warm"), arm_config(c, "online-st", 0, "warm")
    assert offline.k * offline.sample_questions == 32 and offline.sample_questions <= 8
    assert offline.sft_examples == 32 and offline.eval_every == sft.eval_every and offline.lr == sft.lr
    # Online-ST samples as ReFT does: 4 questions x 1 answer a step, for ReFT's 8 steps, scored at the same steps
    assert (online.k, online.questions_per_step, online.total_steps(8), online.eval_every) == (1, 4, 8, 4)
    assert online.max_new_tokens == offline.max_new_tokens == reft.max_new_tokens and online.lr == sft.lr


def test_offline_st_takes_the_sampling_budget_in_whole_answers_per_question():
    c = ReproduceConfig(data_dir="/no/such", samples=768, train_questions=800, runs="offline-st:0")
    assert c.offline_sampling == (1, 768)  # the CPU preset: one answer to each of the first 768 questions
    with pytest.raises(ValueError, match="offline-st draws --samples"):
        ReproduceConfig(samples=48, completions_per_step=16, points=1, train_questions=32, runs="offline-st:0")
    ReproduceConfig(samples=48, completions_per_step=16, points=1, train_questions=32, runs="reft:0")  # not drawn


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--samples", "10"], "multiple of --completions-per-step"),
        (["--group", "1", "--completions-per-step", "4", "--samples", "16"], "--group must be at least 2"),
        (["--points", "5"], "--points (5) must divide"),
        (["--runs", "reft:0,ppo:1"], "arm:seed pairs"),
        (["--runs", "reft"], "arm:seed pairs"),
        (["--lr", "0"], "lr"),
    ],
)
def test_bad_settings_are_one_line_errors_before_any_work(argv, words, capsys, tmp_path):
    main = command(lambda argv: run_reproduce(parse_config(ReproduceConfig, argv)))
    with pytest.raises(SystemExit):
        main(["--data-dir", "/no/such/folder", "--record-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_the_experiment_end_to_end_records_resumes_and_reports(tmp_path, capsys):
    c = tiny(tmp_path)
    text = run_reproduce(c)
    record = tmp_path / "record"
    warm = json.loads((record / "warmup.json").read_text())
    assert warm["fingerprint"] == fingerprint(tmp_path / "runs" / "warmup" / "final")
    assert warm["test"]["n"] == 10 and len(warm["test"]["correct"]) == 10 and len(warm["dev"]["correct"]) == 6
    for arm in ("reft", "sft-continued", "grpo"):
        r = json.loads((record / f"{arm}-seed0.json").read_text())
        assert r["warmup"] == warm["fingerprint"] and r["test"]["n"] == 10
        assert r["machine"] == warm["machine"] == cpu_name()  # which CPU made the bits
        assert [p["samples"] for p in r["curve"]] == [8, 16]  # scored on dev at half and all of the budget
        assert r["best"] in r["curve"] and r["best"]["dev_top1"] == max(p["dev_top1"] for p in r["curve"])
        assert r["train_min"] > 0 and r["settings"]["model"].endswith("warmup/final")
        assert f"| {arm} | 0 |" in text and f"| {arm} | warm-up | 0 |" in text
    reft = json.loads((record / "reft-seed0.json").read_text())
    assert {"objective/score", "objective/kl", "value/explained_var"} <= reft["training"][0].keys()
    assert "| reft | sft-continued | 0 |" in text and "| reft | grpo | 0 |" in text and "n = 10" in text
    assert (record / "table.md").read_text() == text
    assert (record / "dev_curves.png").is_file() and (record / "reft_training.png").is_file()
    # A later sitting: the run folders are gone; the warm-up is rebuilt bit for bit, and recorded arms are skipped
    capsys.readouterr()
    import shutil

    shutil.rmtree(tmp_path / "runs")
    assert run_reproduce(c) == text
    out = capsys.readouterr().out
    assert "warning" not in out and out.count(", skipped") == 3
    assert not (tmp_path / "runs" / "reft-seed0").exists()


def test_the_self_training_arms_and_the_base_model_run_record_and_are_paired(tmp_path):
    c = tiny(tmp_path, runs="offline-st:0,online-st:0,base")
    text = run_reproduce(c)
    base = json.loads((tmp_path / "record" / "base.json").read_text())
    assert base["model"] == c.model and base["test"]["n"] == 10 and len(base["dev"]["correct"]) == 6
    assert "| base model (no SFT) | |" in text and "| warm-up | base model | 0 |" in text
    for arm in ("offline-st", "online-st"):
        r = json.loads((tmp_path / "record" / f"{arm}-seed0.json").read_text())
        assert [p["samples"] for p in r["curve"]] == [8, 16] and r["test"]["n"] == 10 and r["train_min"] > 0
        assert f"| {arm} | 0 |" in text and f"| {arm} | warm-up | 0 |" in text
    offline = tmp_path / "runs" / "offline-st-seed0"
    assert len((offline / "samples.jsonl").read_text().splitlines()) == 16  # the budget, drawn once
    online = json.loads((tmp_path / "record" / "online-st-seed0.json").read_text())
    assert len(online["training"]) == 4 and "online/accuracy" in online["training"][0]
    offline_record = json.loads((tmp_path / "record" / "offline-st-seed0.json").read_text())
    assert offline_record["curve"][0]["train_min"] > offline_record["training"][0]["time/step_s"] / 60  # + sampling


def test_a_record_made_with_other_settings_is_refused(tmp_path):
    c = tiny(tmp_path, runs="sft-continued:0", samples=8, points=1)
    run_reproduce(c)
    with pytest.raises(ValueError, match=r"sft-continued-seed0.json was made with other settings \(lr: 0.0001\)"):
        run_reproduce(tiny(tmp_path, runs="sft-continued:1,sft-continued:0", samples=8, points=1, lr=2e-4))
    assert not (tmp_path / "record" / "sft-continued-seed1.json").exists()  # refused before any work
    with pytest.raises(ValueError, match=r"warmup.json was made with other settings \(warmup_lr: 2e-05\)"):
        run_reproduce(tiny(tmp_path, runs="sft-continued:1", samples=8, points=1, warmup_lr=1e-4))
    # an earlier sitting's arm is checked too, since the table would mix it in
    with pytest.raises(ValueError, match=r"sft-continued-seed0.json was made with other settings \(lr: 0.0001\)"):
        run_reproduce(tiny(tmp_path, runs="grpo:0", samples=8, points=1, lr=2e-4))
    text = run_reproduce(tiny(tmp_path, runs="grpo:0", samples=8, points=1))  # the warm-up's record still holds
    assert (tmp_path / "record" / "grpo-seed0.json").is_file() and "| sft-continued | 0 |" in text


@pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="TRL is in the bench extra (make reproduce-svamp)")
def test_the_trl_arm_trains_scores_dev_on_the_schedule_and_is_recorded(tmp_path):
    c = tiny(tmp_path, runs="trl-grpo:0")
    text = run_reproduce(c)
    r = json.loads((tmp_path / "record" / "trl-grpo-seed0.json").read_text())
    assert [p["samples"] for p in r["curve"]] == [8, 16] and r["test"]["n"] == 10 and r["train_min"] > 0
    assert r["settings"]["advantage"] == "grpo" and r["settings"]["samples_per_prompt"] == 2  # our grpo arm's
    assert any("trl/reward" in row for row in r["training"]) and "| trl-grpo | 0 |" in text
    assert (tmp_path / "runs" / "trl-grpo-seed0" / "best" / "model.safetensors").is_file()


def test_the_table_pairs_arms_on_the_same_questions():
    def run(arm, seed, correct):
        test = {"n": 4, "answered": 100.0, "top1": 25.0 * sum(correct), "correct": correct}
        return {"arm": arm, "seed": seed, "warmup": "f", "best": {"dev_top1": 50.0, "samples": 8}, "train_min": 1.0,
                "test": test}  # fmt: skip

    warm = {"fingerprint": "f", "train_min": 2.0, "dev": {"top1": 40.0},
            "test": {"n": 4, "answered": 75.0, "correct": [True, False, False, False]}}  # fmt: skip
    text = table(warm, [run("reft", 0, [True, True, True, False]), run("sft-continued", 0, [True, False, True, True])])
    assert "| reft | sft-continued | 0 | +0.0 | 1 | 1 | 1 | 1 |" in text  # one question each way
    assert "| reft | warm-up | 0 | +50.0 | 2 | 0 | 0.5 | 1 |" in text  # Holm over the two arms against the warm-up
    assert "| sft-continued | warm-up | 0 | +50.0 | 2 | 0 | 0.5 | 1 |" in text
    assert "| warm-up SFT | 0 | 25.0 % [4.6, 69.9], n = 4 |" in text
    assert "warm-up builds" not in text and "base model" not in text
    base = {"dev": {"top1": 0.0}, "test": {"n": 4, "answered": 50.0, "correct": [False, False, False, True]}}
    text = table(warm, [run("reft", 0, [True, True, True, False])], base)
    assert "| base model (no SFT) | | 25.0 % [4.6, 69.9], n = 4 | 50.0 | 0.0 | | |" in text
    assert "| warm-up | base model | 0 | +0.0 | 1 | 1 | 1 | 1 |" in text
    text = table(warm, [{**run("reft", 0, [True] * 4), "warmup": "g"}])
    assert "2 warm-up builds, each paired with its own where it was scored: f (warmup.json); g (not scored" in text


def test_the_tables_holm_adjusts_the_arms_and_the_warm_up_comparisons_apart():
    def run(arm, correct):
        test = {"n": 8, "answered": 100.0, "correct": correct}
        return {"arm": arm, "seed": 0, "warmup": "f", "best": {"dev_top1": 0.0, "samples": 8}, "train_min": 1.0,
                "test": test}  # fmt: skip

    warm = {"fingerprint": "f", "train_min": 2.0, "dev": {"top1": 0.0},
            "test": {"n": 8, "answered": 100.0, "correct": [False] * 8}}  # fmt: skip
    text = table(warm, [run("reft", [True] * 8), run("sft-continued", [False] * 8)])
    # p = 2 / 2^8 each way it is 8 / 0; pooled into one family of three it would be 3 x 0.0078 = 0.023
    assert "| reft | sft-continued | 0 | +100.0 | 8 | 0 | 0.0078 | 0.0078 |" in text  # a family of one
    assert "| reft | warm-up | 0 | +100.0 | 8 | 0 | 0.0078 | 0.016 |" in text  # Holm over the two against the warm-up
    assert "| sft-continued | warm-up | 0 | +0.0 | 0 | 0 | 1 | 1 |" in text


def test_the_report_shows_earlier_sittings_arms_after_the_ones_asked_for(tmp_path):
    for name in ("grpo-seed0", "reft-seed1", "reft-seed0", "trl-grpo-seed0", "sft-continued-seedx", "warmup"):
        (tmp_path / f"{name}.json").write_text("{}")
    c = ReproduceConfig(record_dir=str(tmp_path), runs="sft-continued:0,reft:0")
    assert recorded_runs(c) == [("sft-continued", 0), ("reft", 0), ("reft", 1), ("grpo", 0), ("trl-grpo", 0)]


def test_accuracy_against_k_with_the_critic_and_a_verifier_and_a_rebuilt_arm(tmp_path, capsys, monkeypatch):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    import ppo.tasks.sampled as sampled
    from ppo.lab.reproduce_scaling import ks

    real = sampled.sample_and_label  # a random model is never right: every other answer is labelled right
    monkeypatch.setattr(sampled, "sample_and_label", lambda *a: [{**r, "label": float(i % 2)}
                                                                 for i, r in enumerate(real(*a))])  # fmt: skip

    c = tiny(tmp_path, runs="reft:0,scale:warmup,scale:reft:0,verifier", scaling_questions=4, scaling_k=4,
             verifier_k=2)  # fmt: skip
    assert ks(c) == [1, 2, 4] and ks(tiny(tmp_path, scaling_k=6)) == [1, 2, 4, 6]
    run_reproduce(tiny(tmp_path, runs="reft:0"))
    head = tmp_path / "runs" / "reft-seed0" / "best" / "value_head.safetensors"  # all zeros: every reward was 0
    save_file({k: torch.randn_like(v) for k, v in load_file(head).items()}, head)  # as a critic that learned
    text = run_reproduce(c)
    record = tmp_path / "record"
    warm, reft = (json.loads((record / f"scale-{name}.json").read_text()) for name in ("warmup", "reft-seed0"))
    for r in (warm, reft):
        assert len(r["questions"]) == 4 and r["same_greedy_answers"] == 4  # the chosen model
        assert all(len(q["samples"]) == len(q["sample_answers"]) == len(q["scores_verifier"]) == 4
                   for q in r["questions"])  # fmt: skip
    assert warm["same_weights"] and not reft["same_weights"]  # its value head was changed above
    assert "scores_critic" in reft["questions"][0] and "scores_critic" not in warm["questions"][0]  # SFT: no head
    verifier = json.loads((record / "verifier.json").read_text())
    assert verifier["samples"] == 16 and "verifier/accuracy" in verifier["training"][-1]  # 8 questions x 2
    assert "| warmup | vote |" in text and "| reft seed 0 | rerank_critic |" in text
    assert "| reft seed 0 | rerank_verifier |" in text and "| warmup | pass |" in text
    assert (record / "scaling.png").is_file() and (record / "table.md").read_text() == text
    # A later sitting: run folders gone. The arm is rebuilt from its record (dev replayed) to the same answers,
    # and the verifier is trained again only for the record it has not scored.
    shutil.rmtree(tmp_path / "runs")
    (record / "scale-reft-seed0.json").unlink()
    capsys.readouterr()
    again = run_reproduce(c)  # the rebuilt critic is all zeros again, so it scores nothing
    assert "| reft seed 0 | rerank_verifier |" in again and "rerank_critic" not in again
    out = capsys.readouterr().out
    assert "reft seed 0: recorded" in out and "scale warmup 0: recorded" in out and "4 of 4 greedy answers" in out
    assert "reft dev" not in out  # no dev scoring in the rebuild
    assert json.loads((record / "scale-reft-seed0.json").read_text())["same_weights"]  # bit for bit


def test_scaling_an_arm_needs_its_record_or_its_run_first(tmp_path):
    with pytest.raises(ValueError, match="scale:grpo:0 needs that arm's record"):
        run_reproduce(tiny(tmp_path, runs="scale:grpo:0"))
    with pytest.raises(ValueError, match="--runs takes arm:seed pairs"):
        tiny(tmp_path, runs="scale:nothing")
    with pytest.raises(ValueError, match="--scaling-k must be at least 2"):
        tiny(tmp_path, runs="scale:warmup", scaling_k=1)
