"""Datasets: GSM8K (local JSONL or the hub), SVAMP and P-CoT program files as prepared for ReFT, and the dev split.
The data order is `ppo.train.data_order`; what the model is shown (prompts, SFT targets) is in `formats`."""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path


def parse_number(text: str) -> float | None:
    """'1,234' -> 1234.0, '$12.50.' -> 12.5, '-3' -> -3.0; None when it is not a finite number."""
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Example:
    """One math word problem."""

    question: str
    answer: float  # the gold numeric answer
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
            check_question(question, f"{path}:{line_no}")
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
    for i, r in enumerate(rows):
        check_question(r["question"], f"openai/gsm8k {split} row {i}")
    return [Example(r["question"], *reversed(parse_gsm8k_answer(r["answer"]))) for r in rows]


def json_rows(path: str | Path) -> list[tuple[int, dict]]:
    """The objects of a JSON list file, each with the line it starts on (for error messages)."""
    text = Path(path).read_text(encoding="utf-8")
    decoder, rows, line, seen = json.JSONDecoder(), [], 1, 0
    try:
        if not text.lstrip().startswith("["):
            raise ValueError("no list")
        pos = 0
        while (pos := _BETWEEN.match(text, pos).end()) < len(text) and text[pos] != "]":
            row, end = decoder.raw_decode(text, pos)
            if not isinstance(row, dict):
                raise json.JSONDecodeError("expected an object", text, pos)
            line, seen = line + text.count("\n", seen, pos), pos
            rows.append((line, row))
            pos = end
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: malformed JSON ({err.msg})") from err
    except ValueError as err:
        raise ValueError(f"{path}: not a JSON list of objects") from err
    return rows


_BETWEEN = re.compile(r"[\s\[,]*")  # what may stand before a row: whitespace, the opening bracket, commas


def read_reft_json(path: str | Path) -> list[Example]:
    """Read data as prepared for ReFT (SVAMP, or a `*_python_sdp.json`): a JSON list of
    {item_id, question, answer_value[, answer_cot]}.

    An N-CoT's own closing "Therefore, the answer is <N>." is cut, so every target ends with one trigger.
    """
    examples = []
    for line_no, row in json_rows(path):
        where = f"{path}:{line_no}: row {len(examples)}"
        try:
            value, question = parse_number(str(row["answer_value"])), row["question"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{where} is missing the field {err}") from err
        if value is None:
            raise ValueError(f"{where} has a non-numeric answer_value {row['answer_value']!r}")
        check_question(question, where)
        cot = row.get("answer_cot")
        cot = re.split(r"\s*Therefore, the answer is", cot)[0].strip() if cot else None
        examples.append(Example(question, value, cot))
    if not examples:
        raise ValueError(f"{path}: no examples")
    return examples


def check_question(question, where: str) -> None:
    """A question is a non-empty string; anything else (a number, null) would be trained on as text."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: the question must be a non-empty string (got {question!r})")


SVAMP_FILES = {"train": "train_nl.json", "test": "test.json"}
GSM8K_FILES = {"train": "train.jsonl", "test": "test.jsonl"}
PCOT_TRAIN_FILE = "train_python_sdp.json"  # the ReFT release's name for P-CoT training data (svamp, gsm8k)


def needed_files(dataset: str, answer_format: str, splits: tuple[str, ...]) -> list[str]:
    """The files of a data folder that these splits of `dataset` read."""
    files = SVAMP_FILES if dataset == "svamp" else GSM8K_FILES
    return [PCOT_TRAIN_FILE if answer_format == "pcot" and s == "train" else files[s] for s in splits]


def check_data_dir(dataset: str, data_dir: str | None, answer_format: str, splits: tuple[str, ...]) -> None:
    """Before any model loads: the folder holds the files these splits need; a folder of the other dataset is
    named as such (`--dataset`). No folder means the hub (GSM8K only)."""
    if data_dir is None:
        if dataset != "gsm8k" or answer_format == "pcot":
            raise ValueError(f"--dataset {dataset} --answer-format {answer_format} needs a --data-dir")
        return
    folder = Path(data_dir)
    if not data_dir or not folder.is_dir():
        raise ValueError(f"--data-dir {data_dir!r}: no such folder")
    missing = [f for f in needed_files(dataset, answer_format, splits) if not (folder / f).is_file()]
    if missing:
        other = "svamp" if dataset == "gsm8k" else "gsm8k"
        fits = all((folder / f).is_file() for f in needed_files(other, "ncot", splits))
        hint = f"; it holds {other} files: pass --dataset {other}" if fits else ""
        raise ValueError(f"--data-dir {data_dir!r} has no {', '.join(missing)} for --dataset {dataset}{hint}")


def load_examples(
    dataset: str,
    data_dir: str | None,
    split: str = "train",
    answer_format: str = "ncot",
) -> list[Example]:
    """A split of `gsm8k` (local JSONL or hub) or `svamp` (local JSON as prepared for ReFT).

    With answer_format pcot, the training split is data_dir/train_python_sdp.json (a `def solution()` program
    per question); the test split only needs gold numbers, so it is the usual file.
    """
    if answer_format not in ("ncot", "pcot"):
        raise ValueError(f"unknown answer_format {answer_format!r}; choose ncot or pcot")
    if answer_format == "pcot" and split == "train":
        path = Path(data_dir or ".") / PCOT_TRAIN_FILE
        if data_dir is None or not path.is_file():
            raise FileNotFoundError(
                f"P-CoT training needs {path}: ReFT-format JSON with a Python program per "
                f"question (../shared/data/svamp has one; for GSM8K, the original release's)"
            )
        return read_reft_json(path)
    if dataset == "gsm8k":
        return load_gsm8k(data_dir, split)
    if dataset == "svamp":
        if data_dir is None or split not in SVAMP_FILES:
            raise ValueError(f"SVAMP needs a data_dir and a split in {sorted(SVAMP_FILES)} (got {data_dir}, {split})")
        return read_reft_json(Path(data_dir) / SVAMP_FILES[split])
    raise ValueError(f"unknown dataset {dataset!r}; choose gsm8k or svamp")


def split_dev(examples: list[Example], dev_size: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Carve a fixed, seeded dev split out of train, for model selection (never select on test)."""
    if not 0 <= dev_size < len(examples):
        raise ValueError(f"dev_size = {dev_size} must be in [0, {len(examples)})")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    dev = set(order[:dev_size])
    return [e for i, e in enumerate(examples) if i not in dev], [examples[i] for i in sorted(dev)]
