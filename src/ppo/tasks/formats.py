"""What the model sees: the prompt template and the SFT targets, for N-CoT and P-CoT.

One prompt template serves SFT, RL and evaluation alike, so the policy is always asked the same way.
"""

from __future__ import annotations

import re

from .data import Example

REFT_PROMPT = "Question:\n{question}\nAnswer reasoning:\n"  # the original ReFT prompt
ANSWER_TRIGGER = "\nTherefore, the answer is: {value}"  # the original N-CoT target ending


def format_number(value: float) -> str:
    """72.0 -> '72', 2.5 -> '2.5': how a gold answer is written in an SFT target."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def format_target(example: Example, answer_format: str = "ncot") -> str:
    """The SFT target; EOS is added at tokenisation.

    ncot: the chain of thought, then the answer trigger. GSM8K's calculator notes `<<48/2=24>>` are removed
          (departure: the model writes plain arithmetic).
    pcot: the program as annotated (`def solution(): ... return result`); running it gives the answer.
    """
    if example.solution is None:
        raise ValueError(f"no chain of thought to train on for question {example.question[:60]!r}")
    if answer_format == "pcot":
        return example.solution
    solution = re.sub(r"<<[^>]*>>", "", example.solution)
    return solution + ANSWER_TRIGGER.format(value=format_number(example.answer))


def format_prompt(question: str, template: str, tokenizer=None) -> str:
    """The prompt text for a question: `reft` (the original) or `chat` (the tokenizer's chat template)."""
    if template == "reft":
        return REFT_PROMPT.format(question=question)
    if template == "chat":
        messages = [{"role": "user", "content": question}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    raise ValueError(f"unknown prompt template {template!r}; choose reft or chat")


def drop_long_prompts(
    examples: list[Example],
    tokenizer,
    template: str,
    max_prompt_len: int,
) -> tuple[list[Example], int]:
    """Skip questions whose prompt exceeds max_prompt_len tokens (cutting them would change the question).

    Returns the kept examples and how many were dropped, so the caller can report it.
    """
    kept = [
        ex
        for ex in examples
        if len(tokenizer(format_prompt(ex.question, template, tokenizer), add_special_tokens=False)["input_ids"])
        <= max_prompt_len
    ]
    return kept, len(examples) - len(kept)
