"""LoRA, LoReFT and DiReFT: identity at the start, exactly the base when off, the same numbers cached or not, only
adapter weights train, checkpoints hold the adapter alone, positions survive left padding, R stays orthonormal."""

import inspect
import json

import pytest
import torch
from conftest import make_lm
from torch.testing import assert_close

from ppo.adapters.base import ADAPTER_FILE, AdapterSpec, param_groups
from ppo.adapters.loading import attach, ensure_adapter, load_model, load_policy
from ppo.adapters.loreft import cached_positions, edit_groups
from ppo.lm import decode
from ppo.lm.hook import adapter_of, prompt_positions
from ppo.lm.logprobs import lm_logprobs
from ppo.lm.policy import PolicyWithValue
from ppo.lm.rollout import encode_prompts
from ppo.tasks.stages import math_prompt_fn

ADAPTER_SPECS = ["lora", "loreft", "direft", "loreft:rank=2,layers=1,first=1,last=2,tied=false"]
PROMPTS = ["a b c", "x", "a b c y z", "y z"]  # left padding of 0 to 4 tokens


def batch(tokenizer, T: int = 3, seed: int = 0):
    """Left-padded prompts, then T random response tokens: input_ids, attention_mask (B, P + T)."""
    ids, mask = encode_prompts(tokenizer, PROMPTS, torch.device("cpu"))
    response = torch.randint(2, 25, (len(PROMPTS), T), generator=torch.Generator().manual_seed(seed))
    return torch.cat([ids, response], 1), torch.cat([mask, torch.ones_like(response)], 1)


def perturb(adapter, scale: float = 0.5) -> None:
    """Move every adapter weight away from its starting value, so that the edit is not the identity."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("kind", ADAPTER_SPECS)
def test_adapter_starts_exactly_at_the_base_model_and_off_is_exactly_the_base(kind, tokenizer):
    lm, (ids, mask) = make_lm(layers=3), batch(tokenizer)
    lm.requires_grad_(False)  # as attach leaves it (torch may pick other kernels for trainable weights)
    base = lm_logprobs(lm, ids, mask, 3, 0.7)
    adapter = attach(lm, kind, base="tiny")
    assert torch.equal(lm_logprobs(lm, ids, mask, 3, 0.7), base)  # identity at step 0, bit for bit
    perturb(adapter)
    assert not torch.allclose(lm_logprobs(lm, ids, mask, 3, 0.7), base)
    with adapter.replaced(None):
        assert torch.equal(lm_logprobs(lm, ids, mask, 3, 0.7), base)  # off: exactly the base
    frozen = adapter.frozen_copy()
    perturb(adapter)  # the policy moves on
    moved = lm_logprobs(lm, ids, mask, 3, 0.7)
    with adapter.replaced(frozen):  # the frozen copy does not
        assert not torch.allclose(lm_logprobs(lm, ids, mask, 3, 0.7), moved)
    assert not any(p.requires_grad for p in frozen.parameters())


@pytest.mark.parametrize("kind", ADAPTER_SPECS)
@pytest.mark.parametrize("engine", ["lean", "hf"])
@pytest.mark.parametrize("prompts", [PROMPTS, ["x", "y"]], ids=["padded", "one-token"])
def test_cached_generation_logits_equal_a_full_forward_pass(kind, engine, prompts, tokenizer, monkeypatch):
    """One-token prompts: the prefill and every decode step have the same shape, (B, 1), so only the cache length
    that the forward pass is given tells them apart."""
    lm = make_lm(layers=3)
    perturb(attach(lm, kind, base="tiny"))
    ids, mask = encode_prompts(tokenizer, prompts, torch.device("cpu"))
    P, T = ids.shape[1], 5
    with torch.no_grad():
        if engine == "hf":
            with prompt_positions(lm, mask.bool()):
                gen = lm.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=T,
                    min_new_tokens=T,
                    do_sample=False,
                    output_logits=True,
                    return_dict_in_generate=True,
                    pad_token_id=0,
                )
            out, got = gen.sequences, torch.stack(gen.logits, 1)
        else:
            recorded, real = [], decode.next_tokens
            monkeypatch.setattr(decode, "next_tokens", lambda logits, *a: recorded.append(logits) or real(logits, *a))
            out = decode.generate(lm, ids, mask, T, [], 0, greedy=True)  # no EOS: all T steps
            got = torch.stack(recorded, 1)
        full_mask = torch.cat([mask, torch.ones(len(prompts), T, dtype=torch.long)], 1)
        with prompt_positions(lm, torch.cat([mask.bool(), torch.zeros(len(prompts), T, dtype=torch.bool)], 1)):
            full = lm(out, attention_mask=full_mask, position_ids=(full_mask.cumsum(-1) - 1).clamp(min=0)).logits
    assert got.shape[1] == T
    assert_close(got, full[:, P - 1 : -1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["loreft", "direft:tied=false,first=2,last=3"])
def test_a_prompt_fed_in_two_passes_over_a_cache_is_edited_as_in_one(kind, tokenizer):
    """The second pass continues a cache of k positions: it holds prompt positions k.. and is edited there, as the
    one-pass prefill is. A pass from position 0 longer than the mask is refused (a stale mask)."""
    lm = make_lm(layers=3)
    perturb(attach(lm, kind, base="tiny"))
    ids, mask = encode_prompts(tokenizer, PROMPTS, torch.device("cpu"))
    k, cache_name = 3, "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
    with torch.no_grad(), prompt_positions(lm, mask.bool()):
        whole = lm(ids, mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits  # (B, P, V)
        first = lm(ids[:, :k], mask[:, :k], position_ids=(mask[:, :k].cumsum(-1) - 1).clamp(min=0), use_cache=True)
        rest = lm(
            ids[:, k:],
            mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0)[:, k:],
            **{cache_name: first.to_tuple()[1]},
        ).logits  # positional mask too
        with pytest.raises(RuntimeError, match="prompt tokens of this forward pass"):
            lm(torch.cat([ids, ids], 1))  # from position 0, longer than the prompt mask
    assert_close(torch.cat([first.logits, rest], 1), whole, atol=1e-5, rtol=1e-5)


def test_cached_positions_come_from_the_cache_else_the_mask_whatever_their_names():
    class Cache:
        def get_seq_length(self):
            return 7

    ids, embeds = torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 3, 4)
    assert cached_positions({"input_ids": ids, "attention_mask": torch.ones(2, 5)}) == 4  # decode step
    assert cached_positions({"inputs_embeds": embeds, "attention_mask": torch.ones(2, 1, 3, 9)}) == 6
    assert cached_positions({"input_ids": ids, "attention_mask": None}) == 0  # no cache
    assert cached_positions({"input_ids": ids, "cache": Cache(), "attention_mask": None}) == 7  # 5.24's name
    assert cached_positions({"input_ids": ids, "kwargs": {"past_key_values": Cache()}}) == 7  # in **kwargs


def test_edit_positions_come_from_the_mask_so_left_padding_is_safe(tokenizer):
    prompt = torch.tensor(
        [
            [0, 0, 1, 1, 1, 1, 1, 0, 0],  # 2 pads, 5 prompt tokens, 2 response
            [1, 1, 1, 0, 0, 0, 0, 0, 0],
        ],
        dtype=torch.bool,
    )
    untied = edit_groups(prompt, first=2, last=2, tied=False)
    assert untied.tolist() == [[-1, -1, 0, 0, -1, 1, 1, -1, -1], [0, 0, 1, -1, -1, -1, -1, -1, -1]]
    assert edit_groups(prompt, first=2, last=2, tied=True).tolist()[0] == [-1, -1, 0, 0, -1, 0, 0, -1, -1]
    # The same prompt and response, with and without left padding, get the same log-probs.
    lm = make_lm(layers=2)
    perturb(attach(lm, "loreft:first=1,last=2", base="tiny"))
    ids, mask = batch(tokenizer)
    row = 1  # "x": the most padded row
    alone = mask[row].bool()
    assert_close(
        lm_logprobs(lm, ids[row : row + 1, alone], mask[row : row + 1, alone], 3, 1.0),
        lm_logprobs(lm, ids, mask, 3, 1.0)[row : row + 1],
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("kind", ["lora", "loreft"])
def test_only_adapter_and_value_head_get_gradients(kind, tokenizer):
    lm = make_lm()
    attach(lm, kind, base="tiny")
    policy = PolicyWithValue(lm)
    ids, mask = batch(tokenizer)
    logprobs, values, _ = policy.logprobs_and_values(ids, mask, 3, 1.0)
    (logprobs.sum() + values.sum()).backward()
    for name, p in policy.named_parameters():
        trainable = name.startswith(("lm.ppo_adapter.", "value_head."))
        assert p.requires_grad == trainable, name
        assert (p.grad is not None) == trainable, name
    trained = {id(p) for g in param_groups(policy, 0.1) for p in g["params"]}
    assert trained == {id(p) for n, p in policy.named_parameters() if n.startswith(("lm.ppo_adapter.", "value_head."))}
    with pytest.raises(ValueError, match="critic='shared'"):
        PolicyWithValue(lm, critic="separate")


@pytest.mark.parametrize("kind", ["lora", "loreft:tied=false", "direft"])
def test_save_and_load_hold_only_the_adapter_and_value_head(kind, tmp_path, tokenizer):
    base = tmp_path / "base"
    make_lm().save_pretrained(base)
    tokenizer.save_pretrained(base)
    policy, _ = load_policy(str(base), adapter=kind, device="cpu")
    perturb(adapter_of(policy.lm))
    with torch.no_grad():
        policy.value_head.weight.normal_()
    ids, mask = batch(tokenizer)
    before = policy.logprobs_and_values(ids, mask, 3, 1.0)
    policy.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert ADAPTER_FILE in files and "model.safetensors" not in files
    loaded, _ = load_policy(str(tmp_path / "ckpt"), device="cpu")
    assert str(adapter_of(loaded.lm).spec) == str(AdapterSpec.parse(kind))
    assert adapter_of(loaded.lm).base == str(base.resolve())
    for a, b in zip(before[:2], loaded.logprobs_and_values(ids, mask, 3, 1.0)[:2]):
        assert torch.equal(a, b)
    lm, _ = load_model(str(tmp_path / "ckpt"), device="cpu")  # evaluation's loader too
    assert torch.equal(lm_logprobs(lm, ids, mask, 3, 1.0), before[0])
    assert ensure_adapter(lm, "none", "x") is adapter_of(lm)  # a checkpoint's adapter goes on training
    with pytest.raises(ValueError, match="asks for lora:rank=2"):
        ensure_adapter(lm, "lora:rank=2", str(tmp_path / "ckpt"))


def test_loreft_rotation_stays_orthonormal_and_never_decays(tokenizer):
    lm = make_lm()
    adapter = attach(lm, "loreft:rank=4", base="tiny")
    policy = PolicyWithValue(lm)
    groups = param_groups(policy, weight_decay=0.5)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert no_decay == {id(p) for p in adapter.no_decay()} and len(no_decay) == 2  # one R per layer
    optimizer = torch.optim.AdamW(groups, lr=0.05)
    start = [iv.rotation.weight.detach().clone() for iv in adapter.interventions]
    ids, mask = batch(tokenizer)
    for _ in range(5):
        optimizer.zero_grad()
        policy.logprobs_and_values(ids, mask, 3, 1.0)[0].sum().backward()
        optimizer.step()
    for iv, r0 in zip(adapter.interventions, start):
        R = iv.rotation.weight
        assert not torch.allclose(R, r0)  # it trained
        assert_close(R @ R.T, torch.eye(4), atol=1e-5, rtol=0)  # and is still orthonormal


def test_adapter_spec_parses_prints_and_refuses_bad_options():
    spec = AdapterSpec.parse("loreft:rank=4,layers=0+2,first=3,last=1,tied=false")
    assert (spec.rank, spec.layers, spec.first, spec.last, spec.tied) == (4, (0, 2), 3, 1, False)
    assert AdapterSpec.parse(str(spec)) == spec and str(AdapterSpec.parse("none")) == "none"
    assert AdapterSpec.parse("lora:targets=q_proj+o_proj,alpha=8").targets == ("q_proj", "o_proj")
    for bad, message in [
        ("qlora", "unknown adapter"),
        ("lora:size=3", "bad adapter option"),
        ("loreft:rank=0", "rank must be"),
        ("loreft:first=0,last=0", "first \\+ last"),
    ]:
        with pytest.raises(ValueError, match=message):
            AdapterSpec.parse(bad)
    with pytest.raises(ValueError, match="layers must be in 0..1"):
        attach(make_lm(), "loreft:layers=5", base="tiny")
    with pytest.raises(ValueError, match="no linear layer"):
        attach(make_lm(), "lora:targets=nothing", base="tiny")
    with pytest.raises(RuntimeError, match="prompt tokens"):  # never a silent unedited pass
        lm = make_lm()
        attach(lm, "loreft", base="tiny")
        lm(torch.tensor([[3, 4, 5]]))


@pytest.mark.parametrize("kind", ["loreft", "lora"])
def test_the_pipeline_runs_sft_ppo_and_evaluation_with_one_adapter_setting(kind, tmp_path):
    from conftest import make_tokenizer
    from test_pipeline import tiny_setup

    from ppo.tasks.pipeline import PipelineConfig, run_pipeline

    model_dir, data_dir, out = tiny_setup(tmp_path)
    summary = run_pipeline(
        PipelineConfig(
            model=str(model_dir),
            adapter=kind,
            data_dir=str(data_dir),
            train_questions=8,
            dev_size=4,
            dev_questions=2,
            test_questions=3,
            sft={"batch_size": 4, "lr": 1e-2, "max_len": 64},
            ppo={"steps": 2, "rollout_batch_size": 4, "max_new_tokens": 6, "micro_batch_size": 2},
            eval={"batch_size": 2},
            device="cpu",
            output_dir=str(out),
        )
    )
    assert summary["results"]["ReFT"]["test"]["n"] == 3
    for stage in ("sft", "sft_continued", "ppo"):
        files = {p.name for p in (out / stage / "final").iterdir()}
        assert ADAPTER_FILE in files and "model.safetensors" not in files, stage
    base, _ = load_model(str(model_dir), device="cpu")
    reft, _ = load_model(str(out / "ppo" / "final"), device="cpu")
    sft, _ = load_model(str(out / "sft" / "final"), device="cpu")
    for name, p in base.named_parameters():  # the base never moved
        assert torch.equal(p, reft.get_parameter(name)), name
    ids, mask = batch(make_tokenizer())
    assert not torch.allclose(lm_logprobs(sft, ids, mask, 3, 1.0), lm_logprobs(base, ids, mask, 3, 1.0))
    # So the reference is the SFT adapter, frozen (not the bare base): the first step's KL starts at ~0.
    first = [json.loads(line) for line in (out / "ppo" / "metrics.jsonl").open()][0]
    assert abs(first["objective/kl"]) < 1e-4


@pytest.mark.parametrize("kind", ["lora", "loreft"])
def test_a_ppo_step_moves_the_adapter_and_value_head_only_and_the_reference_stays(kind, tokenizer):
    from test_trainer import QUESTIONS, target_word_reward, tiny_config

    from ppo.adapters.loading import make_reference
    from ppo.lm.reference import SameNetwork
    from ppo.train.trainer import PPOTrainer

    lm = make_lm()
    attach(lm, kind, base="tiny")
    policy, config = PolicyWithValue(lm), tiny_config(adapter=kind, model="tiny", lr=1e-2)
    reference = make_reference(policy, config, resumed=False)
    assert isinstance(reference, SameNetwork) and reference.weights is None  # fresh: the adapter off = the base
    ids, mask = batch(tokenizer)
    ref_before = reference.logprobs(ids, mask, 3, 1.0)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    trainer = PPOTrainer(
        policy, reference, tokenizer, config, math_prompt_fn("reft", tokenizer), target_word_reward("x")
    )
    torch.manual_seed(0)
    trainer.step(QUESTIONS)
    for n, p in policy.named_parameters():
        assert torch.equal(p, before[n]) != n.startswith(("lm.ppo_adapter.", "value_head.")), n
    assert torch.equal(reference.logprobs(ids, mask, 3, 1.0), ref_before)
    assert not torch.equal(policy.logprobs_and_values(ids, mask, 3, 1.0)[0], ref_before)
