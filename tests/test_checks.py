"""Settings and inputs are checked before any model loads, and a bad one ends in one line and exit code 2."""

import json
import math

import pytest
from conftest import SHARED_DATA, make_lm, make_tokenizer

import ppo.tasks.evaluate as evaluate_module
import ppo.tasks.rerank as rerank_module
import ppo.tasks.stages as stages
from ppo.tasks.pipeline import main as pipeline_main
from ppo.train.checks import check_run_folder
from ppo.train.cli import save_config
from ppo.train.config import PPOConfig, SFTConfig
from ppo.train.metrics import MetricsLogger, curve_table, read_jsonl

DATA = SHARED_DATA
GSM8K, SVAMP = str(DATA / "gsm8k"), str(DATA / "svamp")
needs_data = pytest.mark.skipif(not (DATA / "gsm8k" / "train.jsonl").is_file(), reason="needs ../shared/data")


@pytest.fixture
def no_model_loads(monkeypatch):
    """Loading a model fails the test: every check must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the settings were checked")

    for module in (stages, evaluate_module, rerank_module):
        for name in ("load_model", "load_policy"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)


def one_line_error(capsys, main, argv: list[str]) -> str:
    """Run a command that must fail: exit code 2 and a single line on stderr, which is returned."""
    capsys.readouterr()  # what the fixtures printed
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def tiny_model(tmp_path) -> str:
    folder = tmp_path / "tiny"
    make_lm().save_pretrained(folder)  # hidden size 32, 2 layers
    make_tokenizer().save_pretrained(folder)
    return str(folder)


@needs_data
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--clip-eps", "-1"], "--clip-eps must be a finite number > 0 (got -1.0)"),
        (["--gamma", "2"], "--gamma must be in [0, 1] (got 2.0)"),
        (["--lam", "-1"], "--lam must be in [0, 1] (got -1.0)"),
        (["--vf-coef", "-5"], "--vf-coef must be a finite number >= 0"),
        (["--max-grad-norm", "0"], "--max-grad-norm must be a finite number > 0"),
        (["--answer-tolerance", "-1"], "--answer-tolerance must be a finite number >= 0"),
        (["--lr", "inf"], "--lr must be a finite number > 0 (got inf)"),
        (["--save-every", "-1"], "--save-every must be an integer >= 0"),
        (["--eval-every", "-2"], "--eval-every must be an integer >= 0"),
        (["--device", "tpu"], "--device 'tpu' is not a device"),
        (["--dtype", "int8"], "--dtype 'int8' is not a dtype"),
        (["--max-questions", "-5"], "--max-questions must be none or an integer >= 1"),
        (["--model", "smollm2-135M"], "did you mean 'smollm2-135m'?"),
        (["--advantage", "grpo"], "--advantage grpo needs --samples-per-prompt of at least 2"),
        (["--advantage", "rloo", "--samples-per-prompt", "1"], "compares each answer with the other answers"),
        (["--advantage", "dr_grpo", "--samples-per-prompt", "2", "--critic", "separate"], "needs --advantage gae"),
        (["--kl-in", "loss"], "--kl-in loss needs --kl-estimator k2 or k3"),
        (["--clip-eps-high", "-1"], "--clip-eps-high must be none or a finite number > 0 (got -1.0)"),
        (["--model", "runs/no/such/folder"], "--model runs/no/such/folder: no such model folder"),
        (
            ["--dataset", "svamp"],
            "has no train_nl.json for --dataset svamp; it holds gsm8k files: pass --dataset gsm8k",
        ),
    ],
)
def test_each_bad_ppo_setting_is_one_line_before_any_model_loads(capsys, no_model_loads, argv, words):
    err = one_line_error(capsys, stages.ppo_main, ["--data-dir", GSM8K, *argv])
    assert err.startswith("error: ") and words in err, err


@needs_data
def test_an_adapter_larger_than_the_model_is_refused_before_it_loads(capsys, no_model_loads, tiny_model):
    err = one_line_error(
        capsys, stages.sft_main, ["--data-dir", GSM8K, "--model", tiny_model, "--adapter", "lora:rank=100000"]
    )
    assert "rank 100000 is larger than the hidden size 32" in err
    err = one_line_error(
        capsys, stages.sft_main, ["--data-dir", GSM8K, "--model", tiny_model, "--adapter", "loreft:layers=5"]
    )
    assert "has layers 0..1" in err


@needs_data
def test_a_folder_without_a_model_and_a_data_folder_of_the_other_dataset(capsys, no_model_loads, tmp_path):
    err = one_line_error(capsys, stages.sft_main, ["--data-dir", GSM8K, "--model", str(tmp_path)])
    assert "the folder holds no model" in err
    err = one_line_error(capsys, stages.sft_main, ["--data-dir", SVAMP])
    assert "has no train.jsonl for --dataset gsm8k; it holds svamp files: pass --dataset svamp" in err
    err = one_line_error(capsys, stages.sft_main, ["--data-dir", GSM8K, "--answer-format", "pcot"])
    assert "has no train_python_sdp.json" in err


@needs_data
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--batch-size", "-3"], "--batch-size must be an integer >= 1"),
        (["--temperature", "0", "--k", "2"], "--temperature must be a finite number > 0"),
        (["--limit", "0"], "--limit must be none or an integer >= 1"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be an integer >= 1"),
        (["--data-dir", "/no/such/data"], "--data-dir '/no/such/data': no such folder"),
        (["--rerank-critic"], "reranking picks one of k samples: it needs --k 2 or more (got --k 1)"),
        (["--k", "2", "--rerank-critic"], "smollm2-135m has no value_head.safetensors: reranking needs"),
        (["--k", "2", "--verifier", "/no/such"], "/no/such has no value_head.safetensors"),
    ],
)
def test_each_bad_evaluation_setting_is_one_line_before_the_model_loads(capsys, no_model_loads, argv, words):
    err = one_line_error(capsys, evaluate_module.main, ["--data-dir", GSM8K, *argv])
    assert words in err, err


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="--gamma must be in"):
        stages.ppo_main(["--gamma", "2", "--debug"])


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(ValueError, match="--prompt-template must be one of reft, chat"):
        SFTConfig(prompt_template="Reft")
    with pytest.raises(ValueError, match="--kl-estimator must be one of k1, k2, k3"):
        PPOConfig(kl_estimator="k4")


def test_a_run_folder_refuses_other_settings_and_names_them(tmp_path):
    saved = PPOConfig(kl_coef=0.05, output_dir=str(tmp_path))
    save_config(saved, tmp_path / "config.json")
    check_run_folder(saved, tmp_path / "config.json")  # the same settings: go on
    check_run_folder(PPOConfig(kl_coef=0.05, output_dir="elsewhere", save_every=5), tmp_path / "config.json")
    with pytest.raises(ValueError) as err:
        check_run_folder(PPOConfig(kl_coef=0.1, top_p=0.9, output_dir=str(tmp_path)), tmp_path / "config.json")
    assert "--kl-coef 0.05 -> 0.1" in str(err.value) and "--top-p 1.0 -> 0.9" in str(err.value)
    check_run_folder(saved, tmp_path / "nothing-here.json")  # a fresh folder


@needs_data
def test_a_rerun_of_a_stage_with_other_settings_is_refused_before_any_model_loads(capsys, no_model_loads, tmp_path):
    save_config(PPOConfig(data_dir=GSM8K, output_dir=str(tmp_path)), tmp_path / "config.json")
    (tmp_path / "final").mkdir()  # a finished run: before, a rerun answered "done" with it
    err = one_line_error(
        capsys, stages.ppo_main, ["--data-dir", GSM8K, "--output-dir", str(tmp_path), "--kl-coef", "0.2"]
    )
    assert "holds a run with other settings (--kl-coef 0.05 -> 0.2)" in err


@needs_data
def test_a_failed_pipeline_start_leaves_nothing_that_blocks_the_fix(capsys, tmp_path):
    out = tmp_path / "run"
    for bad in (["--kl-coef", "-1"], ["--prompt-template", "chat", "--model", "smollm2-135M"]):
        one_line_error(capsys, pipeline_main, ["--data-dir", GSM8K, "--output-dir", str(out), *bad])
        assert not out.exists() or not any(out.iterdir())


@needs_data
def test_a_resumed_pipeline_with_other_settings_is_refused_naming_them(capsys, tmp_path):
    from ppo.tasks.pipeline import PipelineConfig

    out = tmp_path / "run"
    from ppo.tasks.pipeline import write_settings

    write_settings(PipelineConfig(data_dir=GSM8K, output_dir=str(out)).settings(), out / "pipeline_config.json")
    err = one_line_error(
        capsys, pipeline_main, ["--data-dir", GSM8K, "--output-dir", str(out), "--resume", "--model", "HuggingFaceTB/x"]
    )
    assert "--model 'smollm2-135m' -> 'HuggingFaceTB/x'" in err
    err = one_line_error(
        capsys, pipeline_main, ["--data-dir", GSM8K, "--output-dir", str(out), "--resume", "--top-p", "0.9"]
    )
    assert "(--top-p 1.0 -> 0.9)" in err


def test_metrics_are_valid_json_with_null_for_nan(tmp_path):
    logger = MetricsLogger(tmp_path / "metrics.jsonl")
    logger.log({"step": 1, "value/explained_var": math.nan, "objective/kl": math.inf, "loss/value": 0.5})
    line = (tmp_path / "metrics.jsonl").read_text()

    def strict(name):
        raise ValueError(f"not JSON: {name}")

    record = json.loads(line, parse_constant=strict)
    assert record == {"step": 1, "value/explained_var": None, "objective/kl": None, "loss/value": 0.5}
    table = curve_table(read_jsonl(tmp_path / "metrics.jsonl"), ["value/explained_var", "loss/value", "missing"])
    assert table.splitlines()[-1] == "| 1 | null | 0.5 |  |"


@pytest.mark.parametrize(
    "main, argv, words",
    [
        (pipeline_main, ["--prompt-template", "Reft"], "invalid choice: 'Reft'"),
        (stages.ppo_main, ["--kl-coeff", "0.1"], "unrecognized arguments: --kl-coeff 0.1; did you mean --kl-coef?"),
        (pipeline_main, ["--max-len", "384"], "--max-len 384; did you mean --sft-max-len?"),
        (pipeline_main, ["--kl-coeff=0.1"], "--kl-coeff=0.1; did you mean --kl-coef?"),
        (stages.sft_main, ["--epochs", "many"], "argument --epochs: invalid float value: 'many'"),
    ],
)
def test_flag_errors_are_one_line_too(capsys, main, argv, words):
    assert words in one_line_error(capsys, main, argv)


@needs_data
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--ref-model", "smollm2-135M"], "did you mean 'smollm2-135m'?"),
        (["--test-questions", "0"], "--test-questions must be an integer >= 1"),
        (["--eval-k", "0"], "--eval-k must be an integer >= 1"),
        (["--ppo-lr", "nan"], "--ppo-lr must be a finite number > 0"),
        (["--eval-max-new-tokens", "0"], "--eval-max-new-tokens must be an integer >= 1"),
        (["--dev-size", "100000"], "dev_size = 100000 must be in"),
    ],
)
def test_a_bad_pipeline_setting_names_its_pipeline_flag_and_leaves_nothing(
    capsys, no_model_loads, tmp_path, argv, words
):
    out = tmp_path / "run"
    err = one_line_error(capsys, pipeline_main, ["--data-dir", GSM8K, "--output-dir", str(out), *argv])
    assert words in err, err
    assert not out.exists() or not any(out.iterdir())


def test_a_setting_one_version_lacks_is_not_compared_but_the_device_is(tmp_path):
    saved = PPOConfig(output_dir=str(tmp_path))
    settings = json.loads(json.dumps(__import__("dataclasses").asdict(saved)))
    del settings["max_prompt_len"]  # an older version without it
    settings["retired_setting"] = 3  # a newer one with it
    (tmp_path / "config.json").write_text(json.dumps(settings))
    check_run_folder(saved, tmp_path / "config.json")
    with pytest.raises(ValueError, match="--device 'auto' -> 'cpu'"):
        check_run_folder(PPOConfig(output_dir=str(tmp_path), device="cpu"), tmp_path / "config.json")
    check_run_folder(PPOConfig(output_dir=str(tmp_path), gradient_checkpointing=True), tmp_path / "config.json")


def test_an_auto_setting_compares_by_the_value_it_stands_for(tmp_path):
    before = json.loads(json.dumps(__import__("dataclasses").asdict(PPOConfig())))
    before["loss_aggregation"] = "seq_mean_token_mean"  # written before the default became auto
    (tmp_path / "config.json").write_text(json.dumps(before))
    check_run_folder(PPOConfig(), tmp_path / "config.json")  # the same run: resumes
    with pytest.raises(ValueError, match="--loss-aggregation 'seq_mean_token_mean' -> 'token_mean'"):
        check_run_folder(PPOConfig(loss_aggregation="token_mean"), tmp_path / "config.json")
    save_config(PPOConfig(advantage="dr_grpo", samples_per_prompt=2), tmp_path / "config.json")  # auto
    check_run_folder(
        PPOConfig(advantage="dr_grpo", samples_per_prompt=2, loss_aggregation="seq_mean_token_sum_norm"),
        tmp_path / "config.json",
    )


@needs_data
def test_evaluation_reads_its_data_before_the_model(capsys, no_model_loads, tmp_path):
    argv = ["--data-dir", GSM8K, "--split", "dev", "--dev-size", "100000", "--output-dir", str(tmp_path)]
    assert "dev_size = 100000 must be in" in one_line_error(capsys, evaluate_module.main, argv)


def test_the_metrics_table_refuses_every_zero_in_one_line(capsys, tmp_path):
    from ppo.train.metrics import main as metrics_main

    MetricsLogger(tmp_path / "m.jsonl").log({"step": 1})
    assert "--every must be an integer >= 1" in one_line_error(
        capsys, metrics_main, [str(tmp_path / "m.jsonl"), "--every", "0"]
    )
    assert "the following arguments are required: path" in one_line_error(capsys, metrics_main, [])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a machine without CUDA")
def test_a_cuda_device_on_a_machine_without_one_is_refused():
    with pytest.raises(ValueError, match="--device cuda: this machine has 0 CUDA devices"):
        PPOConfig(device="cuda")


def test_tensorboard_without_its_package_is_one_line_before_any_work(capsys, monkeypatch, no_model_loads):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    for main in (stages.ppo_main, stages.sft_main, pipeline_main):
        err = one_line_error(capsys, main, ["--tensorboard"])
        assert "--tensorboard needs the tensorboard package: pip install -e '.[tensorboard]'" in err, err
