"""torch.distributed on CPU with gloo: two processes, checked against one process on the same data.

Starting processes is the slow part (each imports torch and transformers), so one spawn of 2 ranks
(`two_ranks`, once per module) runs every distributed case and returns what each rank saw; the tests compare that
with single-process runs in the test process itself.
"""

import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import make_lm, make_tokenizer
from torch.distributed.tensor import DTensor
from torch.testing import assert_close

from ppo.adapters.loading import load_policy
from ppo.core.gae import masked_whiten
from ppo.lm.models import checkpoint_activations
from ppo.lm.policy import PolicyWithValue
from ppo.lm.reference import FrozenLM
from ppo.lm.rollout import encode_prompts, sample, samples_from_output
from ppo.tasks.data import Example
from ppo.tasks.decoding import decode_prompts
from ppo.tasks.stages import math_pair_fn, math_prompt_fn
from ppo.train import distributed
from ppo.train.checkpoint import load_state
from ppo.train.config import PPOConfig, SFTConfig
from ppo.train.data_order import batch_indices
from ppo.train.distributed import split_evenly
from ppo.train.fsdp import gathered, optimizer_state, shard_layers
from ppo.train.sft import SFTTrainer, encode_pair
from ppo.train.trainer import PPOTrainer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, fn, args) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.save(fn(*args), f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def on_ranks(fn, *args, world: int = 2) -> list:
    """fn(*args) on `world` processes joined by gloo; returns each rank's result, in rank order."""
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(world, free_port(), out, fn, args), nprocs=world)
        return [torch.load(f"{out}/{r}.pt", weights_only=False) for r in range(world)]


# --- what the 2 ranks run, once --------------------------------------------------------------------------------


def rank_cases(tmp: str) -> dict:
    """Every distributed case, on one rank: the tests below read the results."""
    out = {
        "batches": [split_evenly(batch_indices(12, 4, step, seed=3)) for step in range(6)],
        "whitened": whiten_my_rows(*WHITEN_INPUT),
        "greedy": greedy_texts(),
        "eval": {fsdp: sharded_eval(fsdp) for fsdp in (False, True)},
        "sft": {fsdp: sft_step(fsdp) for fsdp in (False, True)},
    }
    try:
        split_evenly(list(range(5)))
    except ValueError as err:
        out["uneven"] = str(err)
    for fsdp in (False, True):
        for aggregation in AGGREGATIONS:
            save_to = f"{tmp}/ckpt-{fsdp}" if aggregation == "token_mean" else None
            out[fsdp, aggregation] = one_step(fsdp, save_to, {"loss_aggregation": aggregation})
    out["fsdp-checkpointed"] = one_step(True, None, {"gradient_checkpointing": True})
    return out


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[list[dict], str]:
    tmp = str(tmp_path_factory.mktemp("ranks"))
    return on_ranks(rank_cases, tmp), tmp


# --- data sharding ---------------------------------------------------------------------------------------------


def test_each_question_is_sampled_once_per_epoch_across_ranks(two_ranks):
    ranks, _ = two_ranks
    for epoch in range(2):  # 12 questions, 4 per step: 3 steps per epoch
        seen = [i for r in ranks for b in r["batches"][3 * epoch : 3 * epoch + 3] for i in b]
        assert sorted(seen) == list(range(12))  # every question once, on one rank
    assert all(len(b) == 2 for r in ranks for b in r["batches"])
    single = [batch_indices(12, 4, step, seed=3) for step in range(6)]  # a pure function of the step: resumes
    assert [r0 + r1 for r0, r1 in zip(ranks[0]["batches"], ranks[1]["batches"])] == single
    assert "does not split evenly over 2 processes" in ranks[0]["uneven"]


# --- global whitening ------------------------------------------------------------------------------------------

WHITEN_INPUT = (
    torch.randn(4, 6, generator=torch.Generator().manual_seed(0)) * 3 + 1,
    (torch.arange(6) < torch.tensor([6, 4, 2, 1])[:, None]).float(),
)


def whiten_my_rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    rows = slice(2 * dist.get_rank(), 2 * dist.get_rank() + 2)
    width = int(mask[rows].sum(1).max())  # each rank pads only to its own longest row
    return masked_whiten(x[rows, :width], mask[rows, :width], all_reduce=distributed.all_reduce)


def test_global_whitening_equals_whitening_the_concatenated_batch(two_ranks):
    ranks, _ = two_ranks
    x, mask = WHITEN_INPUT
    single = masked_whiten(x, mask)
    for r, rank in enumerate(ranks):
        half = rank["whitened"]
        assert_close(half, single[2 * r : 2 * r + 2, : half.shape[1]])
    local_only = masked_whiten(x[:2], mask[:2])  # what a rank alone would compute
    assert not torch.allclose(local_only, single[:2])


# --- generation with sharded layers ----------------------------------------------------------------------------


def greedy_texts() -> dict[str, list[str]]:
    tokenizer, lm = make_tokenizer(), make_lm(0)
    ids, mask = encode_prompts(tokenizer, ["a b c", "x"], torch.device("cpu"))
    texts = {
        f"{engine}-plain": sample(lm, tokenizer, ids, mask, 8, greedy=True, engine=engine).texts
        for engine in ("lean", "hf")
    }
    shard_layers(lm)
    for engine in ("lean", "hf"):
        with gathered(lm):  # the sampler's caller gathers the shards (the trainer, evaluation)
            texts[f"{engine}-fsdp"] = sample(lm, tokenizer, ids, mask, 8, greedy=True, engine=engine).texts
    texts["still sharded"] = [type(lm.model.layers[0].mlp.up_proj.weight).__name__]
    return texts


def test_generation_with_sharded_layers_equals_the_whole_model(two_ranks):
    for rank in two_ranks[0]:
        texts = rank["greedy"]
        assert texts["lean-fsdp"] == texts["lean-plain"] == texts["hf-plain"] == texts["hf-fsdp"]
        assert any(texts["lean-plain"])
        assert texts["still sharded"] == ["DTensor"]  # the gathered weights were dropped after


def sharded_eval(fsdp: bool) -> list[str]:
    """Greedy answers to 5 prompts, every rank getting all of them. Rank 0 decodes 2 batches, rank 1 one."""
    lm = make_lm(0)
    if fsdp:
        shard_layers(lm)
    return decode_prompts(lm, make_tokenizer(), EVAL_PROMPTS, 6, batch_size=2, greedy=True)


EVAL_PROMPTS = ["a b", "c", "x y z", "b c a", "Question: 3"]


@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp2"])
def test_evaluation_is_sharded_and_gathered_in_order(two_ranks, fsdp):
    single = decode_prompts(make_lm(0), make_tokenizer(), EVAL_PROMPTS, 6, batch_size=2, greedy=True)
    assert any(single)
    for rank in two_ranks[0]:
        assert rank["eval"][fsdp] == single


# --- one SFT step ----------------------------------------------------------------------------------------------


def sft_step(fsdp: bool) -> dict[str, torch.Tensor]:
    tokenizer, lm = make_tokenizer(), make_lm(0)
    if fsdp:
        shard_layers(lm)
    trainer = SFTTrainer(
        lm,
        tokenizer,
        SFTConfig(lr=0.1, batch_size=1, grad_accum=4, output_dir="unused"),
        math_pair_fn("reft", tokenizer),
    )
    trainer.optimizer = compared_optimizer([p for p in lm.parameters() if p.requires_grad], 0.1)
    rows = [
        encode_pair(tokenizer, *trainer.pair_fn(Example(q, 0.0, RESPONSES[q].replace(" <eos>", "")))) for q in RESPONSES
    ]
    metrics = trainer.step(rows, lr=0.1)
    return {"loss": metrics["loss"], **full_weights(lm)}


@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp2"])
def test_two_processes_take_the_sft_step_one_process_takes(two_ranks, fsdp):
    single = sft_step(False)
    assert single["loss"] > 0
    for rank in two_ranks[0]:
        for key, value in single.items():
            assert_close(torch.as_tensor(rank["sft"][fsdp][key]), torch.as_tensor(value), rtol=1e-4, atol=1e-5, msg=key)


# --- one PPO step ----------------------------------------------------------------------------------------------
QUESTIONS = [Example("a b", 1.0), Example("c", 2.0), Example("x y z", 3.0), Example("b c a", 4.0)]
# Every response ends with EOS: padding is EOS too, so a response without one would change with its batch's width.
RESPONSES = {"a b": "x 5 y <eos>", "c": "z <eos>", "x y z": "1 2 3 4 <eos>", "b c a": "a <eos>"}


def fixed_responses(trainer: PPOTrainer):
    """A stand-in for sampling: each question always gets the same response, so runs can be compared."""
    tokenizer = trainer.tokenizer

    def sample_responses(examples: list[Example]):
        prompt_ids, prompt_mask = encode_prompts(tokenizer, [trainer.prompt_fn(ex) for ex in examples], trainer.device)
        responses = [tokenizer(RESPONSES[ex.question], add_special_tokens=False)["input_ids"] for ex in examples]
        width = max(map(len, responses))
        ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in responses])
        return samples_from_output(tokenizer, torch.cat([prompt_ids, ids], 1), prompt_ids, prompt_mask, [0])

    return sample_responses


def ppo_trainer(fsdp: bool, path: str | None = None, **overrides) -> PPOTrainer:
    policy, tokenizer = load_policy(path, device="cpu") if path else (PolicyWithValue(make_lm(0)), make_tokenizer())
    reference = FrozenLM(policy.lm)
    if overrides.get("gradient_checkpointing"):  # as run_ppo does it: before sharding
        checkpoint_activations(policy.lm)
    if fsdp:
        shard_layers(policy.lm)
        shard_layers(reference.lm)
    config = PPOConfig(
        **{
            **dict(
                rollout_batch_size=4,
                samples_per_prompt=1,
                mini_batch_size=4,
                micro_batch_size=1,
                max_new_tokens=6,
                lr=0.1,
                kl_coef=0.1,
                device="cpu",
                output_dir="unused",
            ),
            **overrides,
        }
    )
    trainer = PPOTrainer(
        policy,
        reference,
        tokenizer,
        config,
        math_prompt_fn("reft", tokenizer),
        reward_fn=lambda texts, examples: [float(len(t.split()) % 3) for t in texts],
    )
    trainer.sample_responses = fixed_responses(trainer)
    trainer.optimizer = compared_optimizer(trainer.params, config.lr)
    return trainer


def compared_optimizer(params, lr: float) -> torch.optim.Optimizer:
    """SGD with momentum, not AdamW, where runs are compared: AdamW's first step is lr * sign(g), so a gradient
    that cancels to ~0 could step +lr or -lr on float rounding alone. SGD's step is proportional to g."""
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def full_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every weight, whole (sharded ones are gathered: every rank must call)."""
    return {
        k: (v.full_tensor() if isinstance(v, DTensor) else v).detach().clone() for k, v in module.state_dict().items()
    }


def one_step(fsdp: bool, save_to: str | None = None, overrides: dict | None = None) -> dict:
    """One PPO step on this rank's share of QUESTIONS; optionally save, then load and resume from the checkpoint."""
    overrides = overrides or {}
    trainer = ppo_trainer(fsdp, **overrides)
    torch.manual_seed(100 + (dist.get_rank() if dist.is_initialized() else 0))  # each rank its own stream
    metrics = trainer.step(split_evenly(QUESTIONS))
    result = {
        "weights": full_weights(trainer.policy),
        "metrics": metrics,
        "optimizer": optimizer_state(trainer.policy, trainer.optimizer),
        "rng": torch.get_rng_state(),
    }
    if save_to:
        trainer.save(save_to)
        resumed = ppo_trainer(fsdp, path=save_to, **overrides)
        resumed.resume(save_to)
        result |= {
            "resumed_optimizer": optimizer_state(resumed.policy, resumed.optimizer),
            "resumed_rng": torch.get_rng_state(),
            "resumed_weights": full_weights(resumed.policy),
        }
    return result


AGGREGATIONS = ("seq_mean_token_mean", "token_mean")


@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp2"])
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_two_processes_take_the_step_one_process_takes_on_the_whole_batch(two_ranks, fsdp, aggregation):
    initial = PolicyWithValue(make_lm(0)).state_dict()
    single = one_step(False, overrides={"loss_aggregation": aggregation})
    moved = max((single["weights"][k] - initial[k]).abs().max().item() for k in initial)
    assert moved > 1e-3  # the step did something
    for rank in two_ranks[0]:
        result = rank[fsdp, aggregation]
        assert result["weights"].keys() == single["weights"].keys()
        for key, value in single["weights"].items():
            assert_close(result["weights"][key], value, rtol=1e-4, atol=1e-5, msg=key)
        for key in ("objective/score", "objective/kl", "objective/reward", "loss/policy", "policy/grad_norm"):
            assert result["metrics"][key] == pytest.approx(single["metrics"][key], rel=1e-4, abs=1e-6)


def test_fsdp2_with_gradient_checkpointing_takes_the_same_step(two_ranks):
    single = one_step(False)
    for rank in two_ranks[0]:
        for key, value in single["weights"].items():
            assert_close(rank["fsdp-checkpointed"]["weights"][key], value, rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp2"])
def test_a_checkpoint_resumes_every_rank_its_own_random_stream_and_the_optimizer(two_ranks, fsdp):
    ranks, tmp = two_ranks
    results = [rank[fsdp, "token_mean"] for rank in ranks]
    state = load_state(f"{tmp}/ckpt-{fsdp}")
    assert len(state["rng_by_rank"]) == 2
    assert not torch.equal(results[0]["rng"], results[1]["rng"])
    for result in results:
        assert torch.equal(result["resumed_rng"], result["rng"])  # each rank resumes its own stream
        for key, value in result["weights"].items():
            assert torch.equal(result["resumed_weights"][key], value), key
    saved, resumed = results[0]["optimizer"], results[0]["resumed_optimizer"]
    assert saved["state"] and saved["state"].keys() == resumed["state"].keys()
    for p in saved["state"]:
        for name, value in saved["state"][p].items():
            assert torch.equal(torch.as_tensor(resumed["state"][p][name]), torch.as_tensor(value)), (p, name)
