import json

import pytest
import torch
from conftest import SHARED_DATA, make_lm

from ppo.lab.ablate import AblationConfig, run_ablation, run_grid
from ppo.lab.grids import adapter_grid, estimator_grid, kl_grid, sampling_grid
from ppo.lab.report import collect, write_ablation
from ppo.train.cli import save_config
from ppo.train.config import PPOConfig


def test_grids_hold_everything_else_fixed():
    assert [name for name, _ in kl_grid()] == [
        "beta=0.0",
        "beta=0.01",
        "beta=0.05",
        "beta=0.2",
        "adaptive",
        "beta=0.05,k3",
    ]
    grid = sampling_grid(8)
    assert len(grid) == 12
    for _, o in grid:  # equal completions: more samples per question means fewer questions
        assert o["rollout_batch_size"] * o["samples_per_prompt"] == 8
        PPOConfig(**o, mini_batch_size=8, micro_batch_size=4)  # every configuration is valid
    with pytest.raises(ValueError, match="multiple of 4"):
        sampling_grid(6)
    for name, o in adapter_grid():  # full fine-tuning, LoRA, LoReFT: each a valid PPO setting
        assert PPOConfig(**o).adapter == {"full": "none"}.get(name, name)
    grid = estimator_grid(8)  # only the estimator changes: the same 4 answers to each of 2 questions
    assert [name for name, _ in grid] == ["gae", "grpo", "rloo", "dr_grpo"]
    for name, o in grid:
        assert PPOConfig(**o, mini_batch_size=8).advantage == name
        assert {k: v for k, v in o.items() if k != "advantage"} == {"samples_per_prompt": 4, "rollout_batch_size": 2}
    with pytest.raises(ValueError, match="not a multiple of 4"):
        estimator_grid(6)


def fake_run(fail_on: set[str]):
    """Stands in for PPO: writes a metrics.jsonl shaped like the trainer's and returns a dev score."""
    calls = []

    def run(config: PPOConfig) -> float:
        calls.append(config)
        if config.kl_coef in fail_on:
            raise RuntimeError("diverged")
        from pathlib import Path

        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = [
            {"step": s, "objective/reward": config.kl_coef + s, "objective/kl": 1.0, "response/length": 10.0}
            for s in (1, 2)
        ]
        (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        save_config(config, out / "config.json")  # as the trainer does
        return 10.0 * config.seed + 5.0

    run.calls = calls
    return run


def test_run_grid_skips_finished_runs_reports_failures_and_aggregates_seeds(tmp_path):
    grid, base = kl_grid()[:3], PPOConfig(rollout_batch_size=4, mini_batch_size=4)
    run = fake_run(fail_on={0.01})
    status = run_grid(base, grid, [0, 1], run, tmp_path)
    assert status["beta=0.0/seed-1"] == "done" and status["beta=0.01/seed-0"] == "failed"
    assert {c.seed for c in run.calls} == {0, 1} and all(c.output_dir.startswith(str(tmp_path)) for c in run.calls)
    again = fake_run(fail_on=set())
    status = run_grid(base, grid, [0, 1], again, tmp_path)  # rerun: only the failed one runs
    assert [c.kl_coef for c in again.calls] == [0.01, 0.01] and status["beta=0.0/seed-0"] == "skipped"
    (tmp_path / "beta=0.05" / "seed-1" / "result.json").unlink()  # a run cut short
    rows, missing = collect(tmp_path, grid, [0, 1])
    assert missing == ["beta=0.05 seed 1: incomplete"]
    assert rows[0]["dev_top1"] == 10.0 and rows[0]["dev_top1_std"] == pytest.approx(7.0711, abs=1e-4)
    assert rows[0]["reward"] == pytest.approx(1.5) and rows[2]["seeds"] == 1
    text = write_ablation(tmp_path, rows, missing)
    assert "| beta=0.0 | 2 | 10.0 ± 7.1 |" in text and "beta=0.05 seed 1: incomplete" in text
    with pytest.raises(ValueError, match=r"beta=0.0.seed-0 holds a run with other settings \(--lr 3e-07 -> 1.0\)"):
        run_grid(PPOConfig(rollout_batch_size=4, mini_batch_size=4, lr=1.0), grid, [0, 1], again, tmp_path)
    assert (tmp_path / "results.csv").read_text().splitlines()[0].startswith("name,seeds,dev_top1")


def test_run_ablation_end_to_end_on_a_tiny_model(tmp_path, tokenizer):
    warmup = tmp_path / "warmup"
    make_lm().save_pretrained(warmup)
    tokenizer.save_pretrained(warmup)
    c = AblationConfig(
        warmup=str(warmup),
        data_dir=str(SHARED_DATA / "gsm8k"),
        train_questions=8,
        dev_questions=2,
        steps=2,
        completions_per_step=4,
        eval_every=1,
        max_new_tokens=3,
        micro_batch_size=2,
        eval_batch_size=2,
        device="cpu",
        output_dir=str(tmp_path / "ablate"),
    )
    text = run_ablation(c, kl_grid()[:2] + estimator_grid(4, samples=2)[1:2])
    assert "| beta=0.0 | 1 |" in text and "| beta=0.01 | 1 |" in text and "| grpo | 1 |" in text
    assert "| vs beta=0.0 (points, p) |" in text and "| baseline |" in text
    grpo = json.loads((tmp_path / "ablate" / "grpo" / "seed-0" / "result.json").read_text())
    assert len(grpo["dev_correct"]) == 2 and grpo["step_s"] > 0  # the final policy's answer to each dev question
    grpo_log = (tmp_path / "ablate" / "grpo" / "seed-0" / "metrics.jsonl").read_text()
    assert '"objective/equal_groups"' in grpo_log and '"loss/value"' not in grpo_log
    warmup_top1 = json.loads((tmp_path / "ablate" / "warmup.json").read_text())["dev_top1"]
    assert f"before any PPO step: dev top-1 {warmup_top1:.1f} %" in text
    first = json.loads((tmp_path / "ablate" / "beta=0.0" / "seed-0" / "result.json").read_text())
    assert 0.0 <= first["dev_top1"] <= 100.0 and first["length"] > 0
    log = [json.loads(line) for line in (tmp_path / "ablate" / "beta=0.01" / "seed-0" / "metrics.jsonl").open()]
    assert [r["step"] for r in log] == [1, 2] and abs(log[0]["objective/kl"]) < 1e-5 and "eval/dev_score" in log[1]
    assert json.loads((tmp_path / "ablate" / "beta=0.01" / "seed-0" / "config.json").read_text())["kl_coef"] == 0.01
    with pytest.raises(FileNotFoundError, match="warm-up"):
        run_ablation(AblationConfig(warmup=str(tmp_path / "none")), kl_grid())


def test_plots_are_written_for_curves_accuracy_and_beta(tmp_path):
    pytest.importorskip("matplotlib")
    from ppo.lab.report import plot_ablation

    grid = kl_grid()[:3]
    run_grid(PPOConfig(rollout_batch_size=4, mini_batch_size=4), grid, [0, 1], fake_run(set()), tmp_path)
    rows, _ = collect(tmp_path, grid, [0, 1])
    paths = plot_ablation(tmp_path, grid, [0, 1], rows, warmup_top1=2.0)
    assert [p.name for p in paths] == ["curves.png", "final_accuracy.png", "accuracy_vs_beta.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in paths)


def test_without_matplotlib_the_reports_write_no_figures_and_say_so_in_one_line(tmp_path, monkeypatch, capsys):
    import sys

    from ppo.lab.report import plot_ablation

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert plot_ablation(tmp_path, kl_grid()[:1], [0], [], warmup_top1=None) == []
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "[ablate] matplotlib is not installed (pip install -e .[plots])" in out


def test_warmup_score_is_computed_once_per_checkpoint_and_dev_set(tmp_path):
    from ppo.lab.ablate import warmup_score

    calls = []

    def score() -> float:
        calls.append(1)
        return 4.0 + len(calls)

    c = AblationConfig(warmup="a", dev_questions=50, output_dir=str(tmp_path))
    assert warmup_score(c, score) == 5.0 and warmup_score(c, score) == 5.0 and len(calls) == 1  # rerun: cached
    assert warmup_score(AblationConfig(warmup="a", dev_questions=20, output_dir=str(tmp_path)), score) == 6.0
    assert warmup_score(AblationConfig(warmup="b", dev_questions=20, output_dir=str(tmp_path)), score) == 7.0


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--steps", "0"], "--steps must be an integer >= 1 (got 0)"),
        (["--completions-per-step", "-8"], "--completions-per-step must be an integer >= 1"),
        (["--eval-every", "-1"], "--eval-every must be an integer >= 0"),
        (["--lr", "nan"], "--lr must be a finite number > 0"),
        (["--seeds", "0,x"], "--seeds must be comma-separated integers >= 0, like 0,1 (got '0,x')"),
        (["--device", "tpu"], "--device 'tpu' is not a device"),
    ],
)
def test_bad_ablation_settings_are_one_line_before_the_warmup_loads(capsys, argv, words):
    from test_checks import one_line_error

    from ppo.train.cli import command, parse_config

    main = command(lambda argv: run_ablation(parse_config(AblationConfig, argv), kl_grid()))  # as experiments/ does
    err = one_line_error(capsys, main, ["--warmup", "/no/such/warmup", *argv])  # checked before the warm-up is read
    assert words in err, err


def test_the_table_gives_each_accuracy_its_interval_and_a_paired_test_against_the_first_row(tmp_path):
    right = [True] * 10 + [False] * 40  # 50 dev questions, 1 seed
    better = [True] * 10 + [True] * 10 + [False] * 30  # the same 10 right, 10 more
    rows = [
        {"name": "gae", "seeds": 1, "dev_top1": 20.0, "dev_top1_std": 0.0, "dev_correct": right},
        {"name": "grpo", "seeds": 1, "dev_top1": 40.0, "dev_top1_std": 0.0, "dev_correct": better},
        {"name": "rloo", "seeds": 1, "dev_top1": 30.0, "dev_top1_std": 0.0},  # an older result: no answers kept
    ]
    for r in rows:
        r.update({m: 1.0 for m in ("reward", "kl", "length", "step_s", "wall_s")}, reward_std=0.0, kl_std=0.0,
                 length_std=0.0, step_s_std=0.0, wall_s_std=0.0)  # fmt: skip
    text = write_ablation(tmp_path, rows, [], warmup_top1=16.0)
    assert "| gae | 1 | 20.0 | [11.2, 33.0] (50) | baseline |" in text
    assert "| grpo | 1 | 40.0 | [27.6, 53.8] (50) | +20.0, p = 0.002 |" in text  # 10 to 0 discordant: 2 / 2^10
    assert "| rloo | 1 | 30.0 | – | – |" in text
    assert "dev top-1 16.0 % [8.3, 28.5], n = 50." in text


def test_each_run_of_a_grid_samples_from_its_own_seed_whatever_ran_before(tmp_path):
    from conftest import make_lm, make_tokenizer
    from safetensors.torch import load_file
    from test_trainer import QUESTIONS, tiny_config

    from ppo.tasks.stages import run_ppo
    from ppo.train.metrics import read_jsonl

    make_lm().save_pretrained(tmp_path / "model")
    make_tokenizer().save_pretrained(tmp_path / "model")
    scores = []
    for run in ("first", "second"):
        torch.rand(7)  # whatever an earlier run drew
        config = tiny_config(model=str(tmp_path / "model"), advantage="grpo", output_dir=str(tmp_path / run))
        final = run_ppo(config, QUESTIONS)
        scores.append(
            (read_jsonl(tmp_path / run / "metrics.jsonl")[0]["loss/policy"], load_file(f"{final}/model.safetensors"))
        )
    assert scores[0][0] == scores[1][0]  # the same samples, so the same first loss and the same weights after
    assert all(torch.equal(value, scores[1][1][name]) for name, value in scores[0][1].items())
