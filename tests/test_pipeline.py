import json
from pathlib import Path

import pytest
from conftest import make_lm, make_tokenizer

import ppo.tasks.sampled as sampled
from ppo.tasks.pipeline import PipelineConfig, run_pipeline
from ppo.tasks.pipeline_config import flag_name, parse_pipeline, pipeline_parser, reachable, stage_settings
from ppo.tasks.rerank import has_head
from ppo.train.metrics import read_jsonl


def write_gsm8k(folder, n):
    rows = [{"question": f"a b {i % 3}", "answer": f"x y z\n#### {i % 3}"} for i in range(n)]
    for split in ("train", "test"):
        (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def tiny_setup(tmp_path):
    """A tiny random model and 16 GSM8K-style questions: (model folder, data folder, output folder)."""
    model_dir, data_dir, out = tmp_path / "model", tmp_path / "data", tmp_path / "run"
    make_lm().save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    data_dir.mkdir()
    write_gsm8k(data_dir, 16)
    return model_dir, data_dir, out


def test_tiny_pipeline_end_to_end_and_resume(tmp_path):
    model_dir, data_dir, out = tiny_setup(tmp_path)
    config = PipelineConfig(
        model=str(model_dir),
        data_dir=str(data_dir),
        train_questions=8,
        dev_size=4,
        dev_questions=2,
        test_questions=3,
        sft={"batch_size": 4, "max_len": 64},
        ppo={"steps": 2, "rollout_batch_size": 4, "max_new_tokens": 6, "micro_batch_size": 2, "eval_every": 1},
        eval={"batch_size": 2, "k": 2, "rerank_critic": True},
        device="cpu",
        output_dir=str(out),
    )
    summary = run_pipeline(config)
    assert set(summary["results"]) == {"base", "SFT", "SFT-continued", "ReFT"}
    # rerank@k by the critic where a model has a trained one: ReFT's checkpoint, unless its rewards were all 0 so far
    # (a random model's), which leaves the head at its zero start; the SFT models have no value head
    critic = has_head(str(out / "ppo" / "best"))
    assert ("rerank_critic@2" in summary["results"]["ReFT"]["test"]) == critic
    assert "rerank_critic@2" not in summary["results"]["SFT"]["test"] and "vote@2" in summary["results"]["SFT"]["test"]
    assert summary["results"]["ReFT"]["test"]["n"] == 3 and summary["results"]["SFT"]["dev"]["n"] == 2
    assert (out / "ppo" / "final" / "value_head.safetensors").is_file()
    assert (out / "ppo" / "best" / "value_head.safetensors").is_file()  # ReFT = the best policy on dev
    assert (out / "results.md").read_text().startswith("| model |")
    # Every stage is done, so a resumed run only re-reads the results; a fresh run into the folder is refused.
    again = run_pipeline(PipelineConfig(**{**config.__dict__, "resume": True}))
    assert again["results"] == summary["results"]
    with pytest.raises(FileExistsError, match="--resume"):
        run_pipeline(config)


def test_the_baselines_and_a_verifier_join_the_pipeline_with_one_setting_each(tmp_path, monkeypatch):
    model_dir, data_dir, out = tiny_setup(tmp_path)
    # a random model is never right: its own answers are all "0" here, right on a third of the questions
    monkeypatch.setattr(sampled, "decode_prompts", lambda lm, tok, prompts, *a, **k: ["#### 0"] * len(prompts))
    config = PipelineConfig(model=str(model_dir), data_dir=str(data_dir), train_questions=8, dev_size=4,
                            dev_questions=2, test_questions=2, sft={"batch_size": 4, "max_len": 64},
                            ppo={"steps": 2, "rollout_batch_size": 4, "max_new_tokens": 6, "micro_batch_size": 2},
                            eval={"batch_size": 2, "k": 2}, self_training=True, train_verifier=True, device="cpu",
                            output_dir=str(out))  # fmt: skip
    summary = run_pipeline(config)
    assert set(summary["results"]) == {"base", "SFT", "SFT-continued", "ReFT", "Offline-ST", "Online-ST"}
    assert all("rerank_verifier@2" in r["test"] for r in summary["results"].values())
    # ReFT draws 2 steps x 4 answers = 8 over 8 questions: Offline-ST and the verifier 1 each, Online-ST 4 a step
    assert len((out / "offline_st" / "samples.jsonl").read_text().splitlines()) == 8
    assert len((out / "verifier" / "samples.jsonl").read_text().splitlines()) == 8
    assert len(read_jsonl(out / "online_st" / "metrics.jsonl")) == 2
    with pytest.raises(ValueError, match="--train-verifier reranks --eval-k samples: it needs --eval-k 2"):
        PipelineConfig(train_verifier=True)


def learning_rates(c: PipelineConfig) -> tuple[float, float]:
    return stage_settings(c, "sft", "m", Path("out")).lr, stage_settings(c, "ppo", "m", Path("out")).lr


def test_learning_rates_follow_the_policy_kind_unless_given():
    assert learning_rates(PipelineConfig()) == (2e-5, 3e-6)
    assert learning_rates(PipelineConfig(adapter="loreft:rank=4")) == (1e-3, 3e-5)
    assert learning_rates(PipelineConfig(adapter="lora", sft={"lr": 1e-4})) == (1e-4, 3e-5)


def test_every_stage_setting_is_reached_by_a_flag_and_the_preset_fills_the_rest():
    c = parse_pipeline(["--top-p", "0.9", "--kl-estimator", "k3", "--adaptive-kl", "--sft-lr", "1e-4",
                        "--ppo-steps", "3", "--eval-k", "4", "--vf-coef", "2", "--sft-max-len", "100"])  # fmt: skip
    ppo, sft = stage_settings(c, "ppo", "m", Path("p")), stage_settings(c, "sft", "m", Path("s"))
    assert (ppo.top_p, ppo.kl_estimator, ppo.adaptive_kl, ppo.steps, ppo.vf_coef) == (0.9, "k3", True, 3, 2.0)
    assert (sft.lr, sft.max_len, sft.epochs) == (1e-4, 100, 1.0)  # epochs: the preset's
    assert ppo.max_new_tokens == 256 and ppo.mini_batch_size == 8  # the preset; one minibatch per rollout
    assert stage_settings(c, "eval", "m", Path("e")).k == 4
    assert stage_settings(c, "eval", "m", Path("e")).max_new_tokens == 256  # evaluation writes as PPO samples
    parser = pipeline_parser()
    flags = {a for action in parser._actions for a in action.option_strings}
    for stage in ("sft", "ppo", "eval"):
        for name in reachable(stage):
            assert "--" + flag_name(stage, name).replace("_", "-") in flags
    assert {"--top-p", "--kl-estimator", "--adaptive-kl", "--vf-coef", "--ppo-lr", "--sft-lr", "--eval-k"} <= flags
    grpo = parse_pipeline(["--advantage", "grpo", "--samples-per-prompt", "4", "--kl-in", "loss", "--kl-estimator",
                           "k3", "--clip-eps-high", "0.28"])  # fmt: skip
    ppo = stage_settings(grpo, "ppo", "m", Path("p"))
    assert (ppo.advantage, ppo.kl_in, ppo.clip_eps_high, ppo.mini_batch_size) == ("grpo", "loss", 0.28, 32)


def test_a_bad_stage_setting_fails_when_the_pipeline_is_built():
    with pytest.raises(ValueError, match="--gamma must be in"):
        PipelineConfig(ppo={"gamma": 2.0})
    with pytest.raises(ValueError, match="no ppo setting nonsense in the pipeline"):
        PipelineConfig(ppo={"nonsense": 1})


def test_the_main_job_takes_ppo_sampling_and_kl_settings_from_its_command_line(tmp_path):
    """`make train-gsm8k ARGS="--top-p 0.9 --kl-estimator k3 --adaptive-kl ..."`, on a tiny model and data."""
    from ppo.tasks.pipeline import main

    model_dir, data_dir, out = tiny_setup(tmp_path)
    main(["--model", str(model_dir), "--data-dir", str(data_dir), "--output-dir", str(out), "--device", "cpu",
          "--train-questions", "8", "--dev-size", "4", "--dev-questions", "2", "--test-questions", "2",
          "--sft-batch-size", "4", "--sft-max-len", "64", "--ppo-steps", "1", "--rollout-batch-size", "4",
          "--max-new-tokens", "4", "--micro-batch-size", "2", "--eval-batch-size", "2",
          "--top-p", "0.9", "--kl-estimator", "k3", "--adaptive-kl", "--vf-coef", "1"])  # fmt: skip
    ppo = json.loads((out / "ppo" / "config.json").read_text())
    assert (ppo["top_p"], ppo["kl_estimator"], ppo["adaptive_kl"], ppo["vf_coef"]) == (0.9, "k3", True, 1.0)
    saved = json.loads((out / "pipeline_config.json").read_text())
    assert saved["top_p"] == 0.9 and saved["sft_max_len"] == 64 and saved["ppo_steps"] == 1
