"""Evaluation: greedy top-1 accuracy, and majority vote@k, pass@k and rerank@k over k samples.

The answer is extracted exactly as the reward extracts it (`rewards.extract_answers`: a trigger for N-CoT, the
sandboxed program's return value for P-CoT).

    ppo-evaluate --model runs/sft/final --data-dir ../shared/data/gsm8k --limit 100 --k 4
    ppo-evaluate --model runs/reft/final --k 8 --rerank-critic --verifier runs/verifier/final ...   # rerank@8 too
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch

from ..lm.specs import check_model_spec
from ..train import distributed
from ..train.checks import check_run_folder
from ..train.cli import command, parse_config, save_config
from .data import Example, check_data_dir, load_examples, split_dev
from .decoding import decode_prompts
from .eval_config import EvalConfig
from .formats import format_prompt
from .rerank import check_scorer, load_evaluated, rerank, score_samples
from .rewards import check_executor, extract_answers


def majority_vote(answers: list[float | None]) -> float | None:
    """The most common extracted answer (None ignored); a tie goes to the answer seen first."""
    counts = Counter(round(a, 6) for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(round(a, 6) for a in answers if a is not None and counts[round(a, 6)] == best)


def is_correct(answer: float | None, gold: float, tolerance: float) -> bool:
    return answer is not None and abs(answer - gold) <= tolerance


def evaluate(
    lm,
    tokenizer,
    examples: list[Example],
    template: str,
    max_new_tokens: int = 400,
    batch_size: int = 16,
    k: int = 1,
    temperature: float = 1.0,
    tolerance: float = 1e-2,
    desc: str = "eval",
    answer_format: str = "ncot",
    timeout_s: float = 3.0,
    scorers: dict | None = None,
) -> tuple[dict, list[dict]]:
    """Top-1 (greedy) accuracy, and vote@k / pass@k when k > 1, and rerank@k by each of `scorers` ({name: (policy,
    tokenizer)}, ppo.tasks.rerank). Returns (summary, one record per question)."""
    prompts = [format_prompt(ex.question, template, tokenizer) for ex in examples]
    greedy = decode_prompts(lm, tokenizer, prompts, max_new_tokens, batch_size, True, desc=f"{desc} top-1")
    samples = [[] for _ in examples]
    if k > 1:
        many = decode_prompts(
            lm,
            tokenizer,
            [p for p in prompts for _ in range(k)],
            max_new_tokens,
            batch_size,
            False,
            temperature,
            desc=f"{desc} @{k}",
        )
        samples = [many[i * k : (i + 1) * k] for i in range(len(examples))]
    top1 = extract_answers(greedy, answer_format, timeout_s)
    flat = extract_answers([t for s in samples for t in s], answer_format, timeout_s)
    records = []
    for i, (ex, text, sampled) in enumerate(zip(examples, greedy, samples)):
        answers = flat[i * len(sampled) : (i + 1) * len(sampled)]
        records.append(
            {
                "question": ex.question,
                "gold": ex.answer,
                "response": text,
                "answer": top1[i],
                "correct": is_correct(top1[i], ex.answer, tolerance),
                "samples": sampled,
                "sample_answers": answers,
                "vote": majority_vote(answers),
                "pass": any(is_correct(a, ex.answer, tolerance) for a in answers),
            }
        )
    for name, scorer in (scorers or {}).items() if k > 1 else ():
        for record, scores in zip(records, score_samples(scorer, prompts, samples, batch_size, f"{desc} {name}")):
            record[f"scores_{name}"], record[f"rerank_{name}"] = scores, rerank(record["sample_answers"], scores)
    return summarize(records, k, tolerance), records


def summarize(records: list[dict], k: int, tolerance: float) -> dict:
    """Accuracies in percent over the records."""
    n = len(records)
    if not n:
        raise ValueError("no questions to evaluate")
    summary = {
        "n": n,
        "top1": 100.0 * sum(r["correct"] for r in records) / n,
        "answered": 100.0 * sum(r["answer"] is not None for r in records) / n,
    }
    if k > 1:
        summary[f"vote@{k}"] = 100.0 * sum(is_correct(r["vote"], r["gold"], tolerance) for r in records) / n
        summary[f"pass@{k}"] = 100.0 * sum(r["pass"] for r in records) / n
        for name in [key[len("rerank_") :] for key in records[0] if key.startswith("rerank_")]:
            right = sum(is_correct(r[f"rerank_{name}"], r["gold"], tolerance) for r in records)
            summary[f"rerank_{name}@{k}"] = 100.0 * right / n
    return summary


@distributed.main_only
def write_results(out_dir: str | Path, summary: dict, records: list[dict]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def load_split(
    dataset: str, data_dir: str | None, split: str, dev_size: int, seed: int, answer_format: str = "ncot"
) -> list[Example]:
    """test, train (minus dev) or dev, with the same seeded dev split as training."""
    if split == "test":
        return load_examples(dataset, data_dir, "test")
    train, dev = split_dev(load_examples(dataset, data_dir, "train", answer_format), dev_size, seed)
    return dev if split == "dev" else train


@command
def main(argv: list[str] | None = None) -> None:
    """`ppo-evaluate` (or `python -m ppo evaluate`): top-1, vote@k and pass@k of a model on a split. A checkpoint
    that holds an adapter is evaluated with it. Every check comes before the model loads."""
    c = parse_config(EvalConfig, argv)
    check_model_spec(c.model)
    check_data_dir(c.dataset, c.data_dir, c.answer_format if c.split != "test" else "ncot",
                   ("test",) if c.split == "test" else ("train",))  # fmt: skip
    check_executor(c.answer_format)
    for spec in [c.model] * c.rerank_critic + [c.verifier] * (c.verifier is not None):
        check_scorer(spec)
    check_run_folder(c, Path(c.output_dir) / "config.json")
    distributed.init()
    torch.manual_seed(c.seed + distributed.rank())  # each rank its own samples
    examples = load_split(c.dataset, c.data_dir, c.split, c.dev_size, c.seed, c.answer_format)[: c.limit]
    lm, tokenizer, scorers = load_evaluated(c)  # --rerank-critic: checked above that the model has a trained head
    summary, records = evaluate(
        lm,
        tokenizer,
        examples,
        c.prompt_template,
        c.max_new_tokens,
        c.batch_size,
        c.k,
        c.temperature,
        c.tolerance,
        answer_format=c.answer_format,
        timeout_s=c.program_timeout_s,
        scorers=scorers,
    )
    save_config(c, Path(c.output_dir) / "config.json")
    write_results(c.output_dir, {**summary, "config": asdict(c)}, records)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
