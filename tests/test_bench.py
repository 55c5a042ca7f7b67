import torch
from conftest import SHARED_DATA

from ppo.lab import bench, bench_memory
from ppo.train.cli import parse_config
from ppo.train.metrics import matmul_peak


def test_matmul_peak_is_a_plausible_rate():
    peak = matmul_peak(torch.device("cpu"), torch.float32)
    assert 1e9 < peak < 1e14  # between 1 GFLOP/s and 100 TFLOP/s on any CPU


def test_the_memory_probe_receives_every_setting_that_shapes_the_batch(monkeypatch):
    """run_probe starts `python -m ppo.lab.bench_memory --probe ...`: the flags must parse back to the same settings."""
    c = bench.BenchConfig(
        prompts=2,
        completions=3,
        max_new_tokens=17,
        micro_batch_size=2,
        device="cpu",
        adapter="loreft:rank=2",
        gradient_checkpointing=True,
        random_init=True,
    )
    seen = {}

    def fake_run(argv, **kwargs):
        seen["config"] = parse_config(bench.BenchConfig, argv[3:])
        return type("Done", (), {"stdout": '{"peak_bytes": 1}\n'})()

    monkeypatch.setattr(bench_memory.subprocess, "run", fake_run)
    assert bench_memory.run_probe(c, "sft") == {"peak_bytes": 1}
    expected = {k: v for k, v in vars(c).items() if k not in ("probe", "trl", "memory", "output", "repeats")}
    assert {k: getattr(seen["config"], k) for k in expected} == expected and seen["config"].probe == "sft"


def test_our_grpo_in_the_benchmark_is_trls_algorithm_on_the_same_work():
    c = bench.BenchConfig(data_dir=str(SHARED_DATA / "gsm8k"), prompts=2, completions=3, max_new_tokens=17)
    ppo, _, _ = bench.setup(c)
    grpo, _, _ = bench.setup(c, **bench.GRPO)
    assert (grpo.advantage, grpo.kl_in, grpo.kl_estimator, grpo.aggregation) == ("grpo", "loss", "k3", "token_mean")
    same = ("rollout_batch_size", "samples_per_prompt", "mini_batch_size", "max_new_tokens", "ppo_epochs", "kl_coef")
    assert all(getattr(grpo, k) == getattr(ppo, k) for k in same) and ppo.advantage == "gae"


def test_the_decode_floor_counts_every_weight_once_and_the_cache_read_so_far():
    from conftest import make_lm

    from ppo.lab.bench_decode import decode_floor, step_bytes

    lm = make_lm(layers=2)  # hidden 32, 4 heads of 8, 2 kv heads, untied head
    weights = sum(p.numel() for p in lm.parameters()) * 4
    assert step_bytes(lm, rows=3, cached=10) == weights + 2 * 2 * 3 * 2 * 10 * 8 * 4  # k and v, layers, rows, ...
    lm.lm_head.weight = lm.model.embed_tokens.weight  # tied: one matrix, read once
    assert step_bytes(lm, rows=3, cached=10) < weights + 2 * 2 * 3 * 2 * 10 * 8 * 4
    floor = decode_floor(lm, rows=2, prompt=5, steps=4)
    assert floor["bytes_read"] == step_bytes(lm, 2, 7) and floor["step_s"] > 0
    assert floor["floor_over_step"] == floor["floor_s"] / floor["step_s"]
