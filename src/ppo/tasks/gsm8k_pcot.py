"""GSM8K as P-CoT: each annotated solution turned into a `def solution():` program, deterministically, offline.

GSM8K's solutions carry calculator notes, `<<48/2=24>>`. Each note becomes one statement that names its result,
and a later note that uses that result uses the name:

    Natalia sold 48/2 = <<48/2=24>>24 clips in May.            def solution():
    Natalia sold 48+24 = <<48+24=72>>72 clips altogether            \"\"\"Natalia sold clips to 48 of ...\"\"\"
    in April and May.                                               clips_may = 48 / 2
    #### 72                                                         clips_altogether_april = 48 + clips_may
                                                                    result = clips_altogether_april
                                                                    return result

A name is the first three words after the note's value (stop words left out), else the last three before it, else
`step_<k>`. A number the question states stays a literal. The program returns the last named result whose value is
the gold answer. A solution is left out (with its reason) when it has no notes, a note is not arithmetic, a note's
stated value is not what its expression gives, or no note gives the gold answer. Expressions are checked by walking
their syntax tree (numbers, names, + - * / and brackets only); nothing from the data is ever run. The output is the
ReFT release's format, as `train_python_sdp.json` (ppo.tasks.data.PCOT_TRAIN_FILE).
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .data import PCOT_TRAIN_FILE, Example, load_examples
from .formats import format_number

NOTE = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
NUMBER = re.compile(r"\d*\.\d+|\d+\.?")
STOP = {"a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "are", "was", "were", "be", "it", "he",
        "she", "they", "her", "his", "their", "that", "this", "so", "then", "will", "has", "have", "had", "at", "by",
        "with", "from", "as", "which", "there", "per", "each", "than", "total", "s"}  # fmt: skip
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


class Unconvertible(ValueError):
    """A solution that cannot become a program; the message is the reason, counted by `convert_all`."""


def arithmetic(node: ast.AST, values: dict[str, float]) -> float:
    """The value of a parsed expression of numbers, known names, + - * / and unary minus; anything else raises."""
    if isinstance(node, ast.Expression):
        return arithmetic(node.body, values)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        left, right = arithmetic(node.left, values), arithmetic(node.right, values)
        if isinstance(node.op, ast.Div) and right == 0:
            raise Unconvertible("a note divides by zero")
        return OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return arithmetic(node.operand, values) * (-1 if isinstance(node.op, ast.USub) else 1)
    raise Unconvertible("a note is not plain arithmetic")


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP and len(w) > 1]


def name_for(before: str, after: str, step: int, used: set[str]) -> str:
    """The name of a note's result: up to three words after its value, up to the sentence's end, else the last
    three before it, else `step_<k>`; made unique (`_2`, `_3`, ...) and never a Python keyword."""
    following = words(re.split(r"[,;:]|[.!?](?:\s|$)|\n", after, maxsplit=1)[0])[:3]
    preceding = words(re.split(r"[.;!?](?:\s|$)|\n", before)[-1])[-3:]
    base = "_".join(following or preceding) or f"step_{step}"
    base = f"{base}_" if keyword.iskeyword(base) else base
    name, k = base, 2
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def rewrite(expr: str, named: list[tuple[str, float]], given: set[float]) -> str:
    """The note's expression with spaces around operators, and each number that equals an earlier result (the
    latest such) written as that result's name, unless the question states that number (`given`)."""

    def token(m: re.Match) -> str:
        text = m.group()
        value = float(text)
        for name, known in reversed(named if value not in given else []):
            if close(value, known):
                return name
        return text if "." in text else str(int(text))  # '05' is not a Python literal

    spaced = re.sub(r"\s*([-+*/])\s*", r" \1 ", expr.strip())
    text = re.sub(r" +", " ", NUMBER.sub(token, spaced)).strip()
    return re.sub(r"(^|[(*/] ?)- ", r"\1-", text)  # a sign stays on its number: -5 + 3, 2 * -3


def docstring(question: str) -> str:
    """The question as a docstring that parses whatever quotes or backslashes it holds."""
    text = " ".join(question.split()).replace("\\", "\\\\").replace('"', '\\"')
    return f'"""{text}"""'


def to_program(example: Example) -> str:
    """The program for one annotated GSM8K example; raises Unconvertible with the reason."""
    solution = example.solution or ""
    notes = list(NOTE.finditer(solution))
    if not notes:
        raise Unconvertible("the solution has no calculator notes")
    lines, named, values, used = [], [], {}, set()
    given = {float(n) for n in NUMBER.findall(example.question.replace(",", ""))}
    for step, note in enumerate(notes, start=1):
        try:
            expr = rewrite(note.group(1), named, given)
            value = arithmetic(ast.parse(expr, mode="eval"), values)
        except Unconvertible:
            raise
        except (SyntaxError, ValueError, OverflowError, RecursionError) as err:  # a NUL byte, 10**400, ...
            raise Unconvertible("a note is not plain arithmetic") from err
        stated = note.group(2).replace(",", "").replace("$", "").strip()
        if not NUMBER.fullmatch(stated.lstrip("-")) or not close(value, float(stated)):
            raise Unconvertible("a note's stated value is not what its expression gives")
        line_start = solution.rfind("\n", 0, note.start()) + 1
        before = NOTE.sub(" ", solution[line_start : note.start()])
        name = name_for(before, solution[note.end() :].lstrip("$0123456789.,"), step, used)
        lines.append(f"    {name} = {expr}")
        named.append((name, value))
        values[name] = value
    answers = [name for name, value in named if close(value, example.answer)]
    if not answers:
        raise Unconvertible("no note gives the gold answer")
    body = "\n".join(lines)
    return f"def solution():\n    {docstring(example.question)}\n{body}\n    result = {answers[-1]}\n    return result"


def convert_all(examples: list[Example]) -> tuple[list[dict], Counter]:
    """Rows in the ReFT release's P-CoT format for every convertible example, and the count of each reason the
    others were left out."""
    rows, left_out = [], Counter()
    for i, ex in enumerate(examples):
        try:
            program = to_program(ex)
        except Unconvertible as err:
            left_out[str(err)] += 1
            continue
        rows.append({"item_id": f"gsm8k_train_{i}", "question": ex.question, "answer_cot": program,
                     "answer_value": format_number(ex.answer)})  # fmt: skip
    return rows, left_out


@dataclass(frozen=True)
class PcotConfig:
    """Where the GSM8K P-CoT training file is made from and written to."""

    data_dir: str = "../shared/data/gsm8k"
    """GSM8K folder with train.jsonl and test.jsonl (read, never written)."""
    out_dir: str = "runs/gsm8k-pcot"
    """Folder written: train_python_sdp.json, and test.jsonl linked to the GSM8K one (--data-dir for training)."""


def write_pcot(c: PcotConfig) -> tuple[Path, int, Counter]:
    """Convert GSM8K train into out_dir/train_python_sdp.json and link test.jsonl beside it, so out_dir serves as
    `--dataset gsm8k --answer-format pcot --data-dir out_dir`. Returns the file, the rows written and the reasons
    the others were left out."""
    examples = load_examples("gsm8k", c.data_dir, "train")
    test = (Path(c.data_dir) / "test.jsonl").resolve()
    if not test.is_file():
        raise FileNotFoundError(f"{test} does not exist (the P-CoT folder links GSM8K's test split)")
    rows, left_out = convert_all(examples)
    out = Path(c.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PCOT_TRAIN_FILE
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    (out / "test.jsonl").unlink(missing_ok=True)  # a link from an earlier --data-dir, or a dangling one
    (out / "test.jsonl").symlink_to(test)
    return path, len(rows), left_out
