"""Memory per rank of full-fine-tuning PPO, computed from parameter counts (docs/distributed.md).

    python experiments/memory_per_rank.py                  # the table in docs/distributed.md
    python experiments/memory_per_rank.py --ranks 1,4,16

Parameters are counted exactly, on a model built on the meta device (no weights are loaded, nothing is
downloaded). Bytes per parameter, with weights and AdamW moments in the training dtype (bf16 on GPU, as
`--dtype auto` gives; fp32 on CPU doubles every figure): weights 2, gradients 2, two moments 4, and the frozen
reference's weights 2. DDP keeps all of it on every rank. FSDP2 (`--fsdp`) divides the decoder layers' share by N;
the embeddings, final norm and LM head stay whole. Decoding gathers the policy's layers whole for the loop, which
adds 2 bytes per layer parameter then (gradients are freed by then). Activations, logits and the KV cache come on
top and depend on the batch.
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

MODELS = {  # name: (vocab, hidden, layers, intermediate, heads, kv heads, tied embeddings)
    "SmolLM2-135M (default)": (49152, 576, 30, 1536, 9, 3, True),
    "SmolLM2-1.7B": (49152, 2048, 24, 8192, 32, 32, True),
    "CodeLlama-7B (the paper's)": (32016, 4096, 32, 11008, 32, 32, False),
    "CodeLlama-13B": (32016, 5120, 40, 13824, 40, 40, False),
}
GIB = 2**30


def count(vocab: int, hidden: int, layers: int, inter: int, heads: int, kv: int, tied: bool) -> tuple[int, int]:
    """(all parameters, decoder-layer parameters) of a Llama-shaped model, built on the meta device."""
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        intermediate_size=inter,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        tie_word_embeddings=tied,
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())  # tied weights are counted once
    return total, sum(p.numel() for p in model.model.layers.parameters())


def gib_per_rank(total: int, layers: int, ranks: int, fsdp: bool) -> tuple[float, float]:
    """GiB per rank (update, decode): policy weights + grads + moments (8 B) and reference weights (2 B)."""
    share = layers / ranks if fsdp else layers
    held = total - layers + share
    update = 10 * held
    decode = 8 * held + (2 * (layers - share) if fsdp else 0)  # no gradients; the layers gathered whole
    return update / GIB, decode / GIB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="1,2,8", help="comma-separated numbers of ranks")
    ranks = [int(n) for n in parser.parse_args(argv).ranks.split(",")]
    head = " | ".join(f"DDP ×{n} | FSDP2 ×{n}" for n in ranks if n > 1)
    print(f"| model | parameters | in layers | 1 rank | {head} |")
    print("|---" * (4 + 2 * sum(n > 1 for n in ranks)) + "|")
    for name, dims in MODELS.items():
        total, layers = count(*dims)
        cells = [f"{gib_per_rank(total, layers, 1, False)[0]:.1f}"]
        for n in (n for n in ranks if n > 1):
            update, decode = gib_per_rank(total, layers, n, True)
            cells += [f"{gib_per_rank(total, layers, n, False)[0]:.1f}", f"{update:.1f} ({decode:.1f} decoding)"]
        print(f"| {name} | {total / 1e9:.2f} B | {100 * layers / total:.0f} % | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
