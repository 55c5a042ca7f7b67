"""Probes from the SVAMP experiment's warm-up (ppo.lab.probe) on a tiny random Llama: a few steps of an arm with
one setting changed, scored on dev, paired against the warm-up's dev answers, recorded, and skipped once recorded."""

import json
import shutil
from dataclasses import asdict

import pytest
from test_reproduce import tiny

from ppo.lab.probe import ProbeConfig, answered, halves, run_probe, summaries, summary
from ppo.tasks.stats import paired
from ppo.train.cli import command, parse_config


def probe(tmp_path, **kw) -> ProbeConfig:
    return ProbeConfig(**{**asdict(tiny(tmp_path)), "steps": 2, **kw})


@pytest.mark.parametrize("arm, lam", [("reft", 1.0), ("grpo", 0.95)])
def test_a_probe_is_paired_against_the_warmup_recorded_and_then_skipped(tmp_path, capsys, arm, lam):
    p = probe(tmp_path, arm=arm, lam=lam)
    record = run_probe(p)
    settings = record["settings"]
    assert (settings["steps"], settings["lam"], settings["advantage"]) == (2, lam, "gae" if arm == "reft" else "grpo")
    assert settings["rollout_batch_size"] * settings["samples_per_prompt"] == p.completions_per_step
    assert [r["step"] for r in record["training"]] == [1, 2] and len(record["dev"]["correct"]) == p.dev_size
    warm = json.loads((tmp_path / "record" / "warmup.json").read_text())
    assert record["vs_warmup"] == paired(warm["dev"]["correct"], record["dev"]["correct"])
    name = f"reft-lr0.0001-lam{lam}-2" if arm == "reft" else "grpo-lr0.0001-2"  # GRPO runs no GAE: no lam
    path = tmp_path / "record" / "probes" / f"{name}.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(record))
    named = f"{arm} lr 0.0001 lam {lam}, 2 steps" if arm == "reft" else "grpo lr 0.0001, 2 steps"
    assert named in summary(record, warm["dev"]) and len(summaries(p.record_dir)) == 1
    shutil.rmtree(tmp_path / "runs")  # a later sitting: the record alone is enough
    assert run_probe(p)["dev"] == record["dev"] and "skipped" in capsys.readouterr().out


def test_an_online_st_probe_runs_its_steps_at_the_probes_lr_and_is_recorded(tmp_path):
    p = probe(tmp_path, arm="online-st", lr=3e-6)
    record = run_probe(p)
    settings = record["settings"]
    assert settings["lr"] == 3e-6 and settings["questions_per_step"] == p.completions_per_step
    assert settings["epochs"] * p.train_questions == 2 * p.completions_per_step  # 2 steps' worth of questions
    assert [r["step"] for r in record["training"]] == [1, 2] and len(record["dev"]["correct"]) == p.dev_size
    accuracy = [r["online/accuracy"] for r in record["training"]]
    assert record["score_halves"] == record["accuracy_halves"] == (accuracy[0], accuracy[1])
    assert (tmp_path / "record" / "probes" / "online-st-lr3e-06-2.json").is_file()
    assert "online-st lr 3e-06, 2 steps" in summaries(p.record_dir)[0]


def test_a_warmup_recorded_with_other_settings_is_refused(tmp_path):
    run_probe(probe(tmp_path))
    with pytest.raises(ValueError, match="train_questions"):
        run_probe(probe(tmp_path, train_questions=7, name="other"))


def test_halves_are_the_means_of_the_first_and_second_half_of_the_steps():
    rows = [{"s": 0.0}, {"s": 1.0}, {}, {"s": 2.0}, {"s": 4.0}]
    assert halves(rows, "s") == (0.5, 3.0)


def test_answered_means_a_program_returned_a_number_and_the_summary_pairs_it_with_the_warmup():
    warm = {"answers": [1.0, None, None, 2.0], "correct": [True, False, False, False]}
    dev = {"answers": [1.0, 3.0, 5.0, None], "correct": [True, False, True, False]}
    assert answered(dev) == [True, True, True, False]
    record = {"config": {"arm": "reft", "lr": 3e-6, "lam": 1.0, "steps": 16}, "score_halves": [0.2, 0.3], "dev": dev,
              "vs_warmup": paired(warm["correct"], dev["correct"]), "train_min": 30.0}  # fmt: skip
    line = summary(record, warm)
    assert "dev 50.0 %" in line and "+25.0 points on the warm-up (1 gained, 0 lost" in line
    assert "answered +25.0 points (2 gained, 1 lost" in line


def test_bad_settings_are_one_line_errors(capsys):
    main = command(lambda argv: run_probe(parse_config(ProbeConfig, argv)))
    with pytest.raises(SystemExit):
        main(["--steps", "0"])
    err = capsys.readouterr().err
    assert "steps" in err and err.count("\n") == 1, err
