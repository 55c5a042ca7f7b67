"""The warm-up, and its builds: the same code, lock, data and seed need not give the same bits in another sitting
(docs/results.md, "The warm-up's two builds"), so an arm is paired with the build it started from.

    warmup.json                  the recorded build: its settings, fingerprint, dev and test answers
    warmup-builds/PRINT.json     every other build that an arm was trained from (`record_build`, called before the
                                 first arm of a sitting), scored once on the same dev and test questions, with how
                                 many of its answers equal warmup.json's (`same_answers`)

`start_of` finds the record of the build a run started from (its record's `warmup`), and `builds_note` says in a
report which builds the runs came from and how far their answers agree. A build never scored (a probe's, which
scores dev only) is paired with warmup.json's answers, and the note says so.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from ..adapters.loading import load_model
from ..tasks.stages import run_sft
from ..train.metrics import read_jsonl
from .arms import WARMUP_RECORD, fingerprint, scored, train_minutes, warmup_config
from .machine import cpu_name
from .reproduce_config import ReproduceConfig, read_record, write_record

BUILDS = "warmup-builds"


def build_path(record_dir: str | Path, mark: str) -> Path:
    return Path(record_dir) / BUILDS / f"{mark}.json"


def warmup(c: ReproduceConfig, train: list, dev: list, test: list) -> dict:
    """Train the warm-up (skipped when its folder is done), and record its dev and test answers once; a build whose
    weights differ from the recorded one's is named in a warning (`record_build` scores it). Each arm's record says
    which build it started from. Returns {folder, fingerprint}."""
    folder = run_sft(warmup_config(c), train)
    mark, path = fingerprint(folder), Path(c.record_dir) / WARMUP_RECORD
    if not path.is_file():
        rows = read_jsonl(Path(folder).parent / "metrics.jsonl")
        settings = {f.name: getattr(c, f.name) for f in fields(ReproduceConfig)}  # a probe's own fields left out
        record = {"config": settings, "train_min": train_minutes(rows), **score_build(c, folder, mark, dev, test)}
        write_record(path, record)
    elif (recorded := json.loads(path.read_text()))["fingerprint"] != mark:
        print(f"[reproduce] warning: this warm-up's weights ({mark}) are not the recorded warm-up's "
              f"({recorded['fingerprint']}), built on {cpu_name()}; the arms run now start from these, their records "
              f"say so, and the reports pair them with this build's own answers")  # fmt: skip
    return {"folder": folder, "fingerprint": mark}


def record_build(c: ReproduceConfig, start: dict, dev: list, test: list) -> None:
    """Score the build an arm is about to start from on dev and test, once, when it is not warmup.json's, and count
    the answers it shares with warmup.json's. `start` is `warmup`'s return."""
    recorded = json.loads((Path(c.record_dir) / WARMUP_RECORD).read_text())
    if recorded["fingerprint"] == start["fingerprint"] or build_path(c.record_dir, start["fingerprint"]).is_file():
        return
    print(f"[reproduce] scoring warm-up build {start['fingerprint']} once on dev and test (about 18 min on 2 cores)")
    build = score_build(c, start["folder"], start["fingerprint"], dev, test)
    same = {split: sum(a == b for a, b in zip(build[split]["answers"], recorded[split]["answers"], strict=True))
            for split in ("dev", "test")}  # fmt: skip
    write_record(build_path(c.record_dir, build["fingerprint"]), {**build, "same_answers": same})
    print(f"[reproduce] build {build['fingerprint']}: the same answer as the recorded warm-up on {same['dev']} / "
          f"{len(dev)} dev and {same['test']} / {len(test)} test questions")  # fmt: skip


def score_build(c: ReproduceConfig, folder: str | Path, mark: str, dev: list, test: list) -> dict:
    """Build `mark` (the fingerprint `warmup` took of `folder`) scored greedily on dev and test."""
    lm, tokenizer = load_model(folder, c.device, c.dtype)
    return {"fingerprint": mark, "machine": cpu_name(),
            "dev": scored(c, lm, tokenizer, dev, "warm-up dev"),
            "test": scored(c, lm, tokenizer, test, "warm-up test")}  # fmt: skip


def scored_build(record_dir: str | Path | None, mark: str) -> dict | None:
    """Build `mark`'s own record in record_dir's BUILDS; None where it was never scored (or no record_dir is given)."""
    return read_record(build_path(record_dir, mark)) if record_dir is not None else None


def start_of(record_dir: str | Path | None, mark: str, warm: dict | None) -> dict | None:
    """The record a run started from build `mark` is paired with: warmup.json's (`warm`) when it is that build or
    when `mark` was never scored, else the build's own."""
    if warm is not None and warm["fingerprint"] == mark:
        return warm
    return scored_build(record_dir, mark) or warm


def builds_note(record_dir: str | Path | None, marks: set[str], warm: dict | None, what: str = "runs") -> list[str]:
    """A report's closing lines when its runs started from more than one build: each build, and how far its
    answers agree with warmup.json's."""
    if warm is not None:
        marks = marks | {warm["fingerprint"]}
    if len(marks) < 2:
        return []
    parts = []
    for mark in sorted(marks):
        if warm is not None and warm["fingerprint"] == mark:
            parts.append(f"{mark} (warmup.json)")
        elif (build := scored_build(record_dir, mark)) is None:
            parts.append(f"{mark} (not scored: its runs are paired with warmup.json)")
        else:
            same = build["same_answers"]
            parts.append(f"{mark} (the same answer as warmup.json on {same['dev']} / {build['dev']['n']} dev and "
                         f"{same['test']} / {build['test']['n']} test questions)")  # fmt: skip
    return [
        "",
        f"Note: the {what} started from {len(marks)} warm-up builds, each paired with its own where it was scored: "
        f"{'; '.join(parts)}.",
    ]
