import json
from dataclasses import dataclass

import pytest

from ppo.train.cli import build_parser, field_docs, load_config, parse_config, save_config
from ppo.train.config import PPOConfig


def test_defaults_are_the_original_ncot_settings():
    c = PPOConfig()
    assert (c.kl_coef, c.gamma, c.lam, c.clip_eps, c.value_clip_eps, c.vf_coef, c.ppo_epochs, c.temperature) == (
        0.05,
        1.0,
        0.95,
        0.2,
        0.2,
        5.0,
        2,
        1.0,
    )
    assert (c.top_k, c.top_p, c.entropy_coef, c.kl_estimator, c.adaptive_kl) == (0, 1.0, 0.0, "k1", False)


def test_every_field_has_a_docstring():
    docs = field_docs(PPOConfig)
    missing = [f for f in PPOConfig.__dataclass_fields__ if not docs.get(f)]
    assert missing == []


def test_command_line_types_and_flags():
    c = parse_config(
        PPOConfig,
        [
            "--kl-coef",
            "0.01",
            "--no-whiten-advantages",
            "--adaptive-kl",
            "--top-k",
            "5",
            "--ref-model",
            "none",
            "--data-dir",
            "/x",
            "--rollout-batch-size",
            "4",
            "--mini-batch-size",
            "4",
            "--kl-estimator",
            "k3",
        ],
    )
    assert c.kl_coef == 0.01 and c.whiten_advantages is False and c.adaptive_kl is True and c.top_k == 5
    assert c.ref_model is None and c.data_dir == "/x" and c.kl_estimator == "k3"
    assert "per-token KL penalty" in build_parser(PPOConfig).format_help()


@dataclass(frozen=True)
class Percent:
    share: float = 0.5
    """Share of the questions (50 % by default)."""


def test_a_percent_sign_in_a_docstring_is_help_text():  # argparse would read "%" as a format and fail on --help
    assert "(50 % by default)" in " ".join(build_parser(Percent).format_help().split())


@pytest.mark.parametrize("argv", [["--kl-coeff", "0.1"], ["--kl-estimator", "k9"], ["--lr", "fast"]])
def test_bad_flags_are_errors(argv):
    with pytest.raises(SystemExit):
        parse_config(PPOConfig, argv)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(rollout_batch_size=3, mini_batch_size=2), "must be a multiple of mini_batch_size"),
        (dict(mini_batch_size=8, micro_batch_size=3, rollout_batch_size=8), "micro_batch_size = 3"),
        (dict(temperature=0.0), "temperature"),
        (dict(top_p=1.5), r"--top-p must be in \(0, 1\]"),
        (dict(steps=0), "--steps must be an integer >= 1"),
    ],
)
def test_cross_field_checks_name_the_numbers(kwargs, words):
    with pytest.raises(ValueError, match=words):
        PPOConfig(**kwargs)


def test_settings_round_trip_through_json(tmp_path):
    c = PPOConfig(kl_coef=0.2, rollout_batch_size=4, mini_batch_size=4)
    save_config(c, tmp_path / "run" / "config.json")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["kl_coef"] == 0.2
    assert load_config(PPOConfig, tmp_path / "run" / "config.json") == c
