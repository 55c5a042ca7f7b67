import json
from pathlib import Path

import pytest
from conftest import make_lm, make_tokenizer

from ppo.tasks.pipeline import PipelineConfig, learning_rates, run_pipeline, sft_config


def write_gsm8k(folder, n):
    rows = [{"question": f"a b {i % 3}", "answer": f"x y z\n#### {i % 3}"} for i in range(n)]
    for split in ("train", "test"):
        (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_tiny_pipeline_end_to_end_and_resume(tmp_path):
    model_dir, data_dir, out = tmp_path / "model", tmp_path / "data", tmp_path / "run"
    make_lm().save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    data_dir.mkdir()
    write_gsm8k(data_dir, 16)
    config = PipelineConfig(
        model=str(model_dir),
        data_dir=str(data_dir),
        train_questions=8,
        dev_size=4,
        dev_questions=2,
        test_questions=3,
        sft_batch_size=4,
        max_len=64,
        ppo_steps=2,
        rollout_batch_size=4,
        max_new_tokens=6,
        micro_batch_size=2,
        eval_batch_size=2,
        ppo_eval_every=1,
        device="cpu",
        output_dir=str(out),
    )
    summary = run_pipeline(config)
    assert set(summary["results"]) == {"base", "SFT", "SFT-continued", "ReFT"}
    assert summary["results"]["ReFT"]["test"]["n"] == 3 and summary["results"]["SFT"]["dev"]["n"] == 2
    assert (out / "ppo" / "final" / "value_head.safetensors").is_file()
    assert (out / "ppo" / "best" / "value_head.safetensors").is_file()  # ReFT = the best policy on dev
    assert (out / "results.md").read_text().startswith("| model |")
    # Every stage is done, so a resumed run only re-reads the results; a fresh run into the folder is refused.
    again = run_pipeline(PipelineConfig(**{**config.__dict__, "resume": True}))
    assert again["results"] == summary["results"]
    with pytest.raises(FileExistsError, match="--resume"):
        run_pipeline(config)


def test_learning_rates_follow_the_policy_kind_unless_given():
    assert learning_rates(PipelineConfig()) == (2e-5, 3e-6)
    assert learning_rates(PipelineConfig(adapter="loreft:rank=4")) == (1e-3, 3e-5)
    assert learning_rates(PipelineConfig(adapter="lora", sft_lr=1e-4)) == (1e-4, 3e-5)
    assert sft_config(PipelineConfig(adapter="loreft"), "m", 1.0, Path("out")).lr == 1e-3
