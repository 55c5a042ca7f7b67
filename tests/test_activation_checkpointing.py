"""Gradient checkpointing (`--gradient-checkpointing`): the same gradients from fewer stored activations, with every
policy kind, while decoding keeps its KV cache; SFT and PPO runs turn it on from their settings."""

import pytest
import torch
from conftest import make_lm, make_tokenizer
from safetensors.torch import load_file
from test_adapter import PROMPTS, batch, perturb
from torch.testing import assert_close

from ppo.adapters.loading import attach
from ppo.lm import decode
from ppo.lm.hook import adapter_of
from ppo.lm.models import checkpoint_activations
from ppo.lm.policy import PolicyWithValue
from ppo.lm.rollout import encode_prompts

KINDS = ["none", "lora", "loreft", "direft"]


def gradients(kind: str, tokenizer, checkpointed: bool, adapter_off_in_backward: bool = False):
    """Gradients of log-probs + values of one batch, the number of tensors autograd stored, and how many times
    layer 1's attention ran (once in the forward pass, once more when the backward pass recomputes it)."""
    lm = make_lm(layers=3)
    if kind != "none":
        perturb(attach(lm, kind, base="tiny"), 0.1)
    policy, runs, stored = PolicyWithValue(lm), [], []
    lm.model.layers[1].self_attn.register_forward_pre_hook(lambda *_: runs.append(1))
    if checkpointed:
        checkpoint_activations(lm)
    ids, mask = batch(tokenizer)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: stored.append(1) or t, lambda t: t):
        logprobs, values, _ = policy.logprobs_and_values(ids, mask, 3, 0.7)
    loss = logprobs.sum() + values.sum()
    if adapter_off_in_backward:  # the context of the forward pass has long closed by then
        with adapter_of(lm).replaced(None):
            loss.backward()
    else:
        loss.backward()
    return [p.grad for p in policy.parameters() if p.requires_grad], len(stored), len(runs)


@pytest.mark.parametrize("kind", KINDS)
def test_checkpointed_layers_give_the_same_gradients_from_fewer_stored_tensors(kind, tokenizer):
    plain, plain_stored, plain_runs = gradients(kind, tokenizer, checkpointed=False)
    got, stored, runs = gradients(kind, tokenizer, checkpointed=True)
    assert (plain_runs, runs) == (1, 2)  # layer 1 was recomputed in the backward pass
    assert stored < plain_stored / 2
    assert len(got) == len(plain)
    for a, b in zip(got, plain):
        assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lora", "loreft"])
def test_the_recomputation_sees_the_adapter_as_the_forward_pass_did(kind, tokenizer):
    """LoRA's hooks run inside the layers, so they run again in the recomputation, when the adapter may be off:
    without `Adapter.recompute_context` the recomputed layer differs and torch.utils.checkpoint raises."""
    plain, _, _ = gradients(kind, tokenizer, checkpointed=False)
    got, _, _ = gradients(kind, tokenizer, checkpointed=True, adapter_off_in_backward=True)
    for a, b in zip(got, plain):
        assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["lean", "hf"])
def test_decoding_keeps_its_cache_and_the_model_stays_in_eval_mode(engine, tokenizer):
    """transformers drops a layer's KV cache in training mode when checkpointing is on: the LM must be in training
    mode only inside forward passes that build a graph."""
    from ppo.lm.rollout import sample

    ids, mask = encode_prompts(tokenizer, PROMPTS, torch.device("cpu"))
    outputs = []
    for checkpointed in (False, True):
        lm = make_lm(layers=3)
        perturb(attach(lm, "loreft", base="tiny"), 0.1)
        if checkpointed:
            checkpoint_activations(lm)
            PolicyWithValue(lm).logprobs_and_values(*batch(tokenizer), 3, 1.0)[0].sum().backward()
            assert not lm.training
        with torch.no_grad():
            if engine == "lean":
                outputs.append(decode.generate(lm, ids, mask, 6, [], 0, greedy=True))
            else:
                outputs.append(sample(lm, tokenizer, ids, mask, 6, greedy=True, engine="hf").input_ids)
    assert torch.equal(outputs[0], outputs[1])


def test_sft_and_ppo_runs_turn_it_on_from_their_settings(tmp_path, monkeypatch):
    from test_sft import EXAMPLE
    from test_trainer import QUESTIONS, tiny_config

    import ppo.lm.logprobs as logprobs
    import ppo.tasks.stages as stages
    from ppo.train.config import SFTConfig

    model_dir = tmp_path / "model"
    make_lm().save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    checkpointed = []
    # Per-row prompt passes for both (a checkpointed LM cannot share them): Adam would magnify their float rounding
    monkeypatch.setattr(logprobs, "shares_prompts", lambda *args: False)
    monkeypatch.setattr(
        stages, "checkpoint_activations", lambda *lms: checkpointed.extend(lms) or checkpoint_activations(*lms)
    )
    weights = {}
    for on in (False, True):
        sft = stages.run_sft(
            SFTConfig(
                model=str(model_dir),
                gradient_checkpointing=on,
                epochs=1,
                batch_size=2,
                lr=1e-3,
                device="cpu",
                output_dir=str(tmp_path / f"sft{on}"),
            ),
            [EXAMPLE, EXAMPLE],
        )
        torch.manual_seed(0)
        final = stages.run_ppo(
            # missing_eos_score: scores that differ (cut answers -1, the rest 0), so the PPO step moves the weights
            tiny_config(
                model=sft, gradient_checkpointing=on, missing_eos_score=-1.0, output_dir=str(tmp_path / f"ppo{on}")
            ),
            QUESTIONS,
        )
        weights[on] = {stage: load_file(f"{path}/model.safetensors") for stage, path in (("sft", sft), ("ppo", final))}
    assert len(checkpointed) == 3 and checkpointed[2] is None  # SFT's LM; PPO's LM and (no) critic trunk
    for stage in ("sft", "ppo"):
        for name, value in weights[False][stage].items():
            assert_close(weights[True][stage][name], value, rtol=1e-5, atol=1e-6, msg=f"{stage} {name}")
    assert not all(torch.equal(weights[True]["sft"][n], v) for n, v in weights[True]["ppo"].items())


@pytest.mark.parametrize("entropy_grad", [False, True])
def test_recomputed_logits_give_the_same_numbers_and_none_is_stored(entropy_grad):
    from ppo.lm.logprobs import logprobs_from_hidden

    torch.manual_seed(0)
    V, head = 50, torch.nn.Linear(8, 50)
    hidden, tokens = torch.randn(2, 70, 8), torch.randint(0, V, (2, 70))  # 3 chunks of at most 32
    results = []
    for recompute in (False, True):
        h, shapes = hidden.clone().requires_grad_(), []
        head.zero_grad()
        with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(t.shape) or t, lambda t: t):
            logprobs, entropy = logprobs_from_hidden(
                h, head, tokens, 0.7, with_entropy=True, top_k=20, entropy_grad=entropy_grad, recompute=recompute
            )
        (logprobs.sum() + entropy.sum()).backward()
        results.append((logprobs, entropy, h.grad, head.weight.grad.clone()))
        stored_logits = [s for s in shapes if s[-1] == V and len(s) == 3]
        assert bool(stored_logits) != recompute
    for a, b in zip(*results):
        assert_close(a, b, rtol=1e-5, atol=1e-6)
