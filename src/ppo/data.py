"""Datasets and the prompt template: GSM8K from a local JSONL folder or the hub, and a seeded data order.

One prompt template serves SFT, RL and evaluation alike, so the policy is always asked the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .rewards import parse_number

REFT_PROMPT = "Question:\n{question}\nAnswer reasoning:\n"   # the original ReFT prompt


@dataclass(frozen=True)
class Example:
    """One math word problem."""

    question: str
    answer: float               # the gold numeric answer
    solution: str | None = None  # the annotated chain of thought, without the final answer marker


def parse_gsm8k_answer(text: str) -> tuple[str, float | None]:
    """Split a GSM8K answer 'reasoning ... #### 1,234' into ('reasoning ...', 1234.0)."""
    reasoning, sep, final = text.rpartition("####")
    if not sep:
        return text.strip(), None
    return reasoning.strip(), parse_number(final.strip())


def read_gsm8k_jsonl(path: str | Path) -> list[Example]:
    """Read a GSM8K JSONL file (fields `question`, `answer`). A bad row raises an error naming file and line."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                solution, value = parse_gsm8k_answer(row["answer"])
                question = row["question"]
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
                raise ValueError(f"{path}:{line_no}: malformed GSM8K row ({type(err).__name__}: {err})") from err
            if value is None:
                raise ValueError(f"{path}:{line_no}: the answer has no numeric '#### N' ending")
            examples.append(Example(question, value, solution))
    if not examples:
        raise ValueError(f"{path}: no examples")
    return examples


def load_gsm8k(data_dir: str | None, split: str = "train") -> list[Example]:
    """GSM8K from `data_dir/{split}.jsonl`, or from the hub (openai/gsm8k, config main) when data_dir is None."""
    if data_dir is not None:
        path = Path(data_dir) / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (expected GSM8K JSONL with question/answer fields)")
        return read_gsm8k_jsonl(path)
    from datasets import load_dataset  # only hub users pay for the import

    rows = load_dataset("openai/gsm8k", "main", split=split)
    return [Example(r["question"], *reversed(parse_gsm8k_answer(r["answer"]))) for r in rows]


def format_prompt(question: str, template: str, tokenizer=None) -> str:
    """The prompt text for a question: `reft` (the original) or `chat` (the tokenizer's chat template)."""
    if template == "reft":
        return REFT_PROMPT.format(question=question)
    if template == "chat":
        messages = [{"role": "user", "content": question}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    raise ValueError(f"unknown prompt template {template!r}; choose reft or chat")


def drop_long_prompts(examples: list[Example], tokenizer, template: str, max_prompt_len: int,
                      ) -> tuple[list[Example], int]:
    """Skip questions whose prompt exceeds max_prompt_len tokens (cutting them would change the question).

    Returns the kept examples and how many were dropped, so the caller can report it.
    """
    kept = [ex for ex in examples
            if len(tokenizer(format_prompt(ex.question, template, tokenizer), add_special_tokens=False)
                   ["input_ids"]) <= max_prompt_len]
    return kept, len(examples) - len(kept)


def batch_indices(n_examples: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The example indices of batch number `step`: a stream of seeded per-epoch shuffles, cut into batches.

    It depends only on (n_examples, batch_size, step, seed), so a resumed run continues exactly.
    """
    out, position = [], step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(position, n_examples)
        order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        take = order[offset:offset + batch_size - len(out)].tolist()
        out += take
        position += len(take)
    return out
