"""Accuracy against k on the SVAMP experiment's models (issue 22; ppo.lab.reproduce runs it): top-1, vote@k,
pass@k, and rerank@k by the critic (a ReFT model's own value head) and by a verifier trained on the warm-up's own
answers.

    scale:warmup     the warm-up samples `scaling_k` answers at T = 1 to each of the first `scaling_questions` test
                     questions. Every sample's text and answer, and the critic's score where the model has one, is
                     recorded (scale-warmup.json), so that any k up to scaling_k is read from the record alone.
    scale:ARM:SEED   the same for a recorded arm's chosen model (scale-ARM-seedSEED.json). Run folders do not
                     outlive a sitting: a missing arm is retrained with its recorded settings, its dev scores replayed
                     from its record, so it picks the same point without scoring dev. Each record says whether the
                     weights are the recorded ones (`same_weights`; records from before 2026-12-04 keep no
                     fingerprint of the chosen point) and how many greedy answers equal the recorded test answers
                     (decoded in other batches, so a few may differ even from the same weights).
    verifier         samples `verifier_k` answers to each training question from the warm-up, labels them, trains a
                     verifier on them (ppo.tasks.verifier_stage), and scores every scale record's samples that no
                     verifier has scored yet (verifier.json records it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import torch

from ..adapters.loading import load_model
from ..tasks.evaluate import evaluate
from ..tasks.formats import format_prompt
from ..tasks.rerank import has_head, load_scorer, score_samples
from ..tasks.sampled import sampling_minutes
from ..tasks.stats import interval_text, paired
from ..tasks.verifier_stage import run_verifier
from ..train.metrics import read_jsonl
from ..train.verifier_training import VerifierConfig
from . import arms
from .reproduce_config import ReproduceConfig, record_path, write_record
from .scaling import accuracy_at_k, correct_at_k, plot_scaling

WARMUP = "warmup"
VERIFIER_RECORD = "verifier.json"
KEPT = ("question", "gold", "answer", "correct", "samples", "sample_answers", "scores_critic")  # per question


def scale_path(c: ReproduceConfig, arm: str, seed: int) -> Path:
    name = WARMUP if arm == WARMUP else f"{arm}-seed{seed}"
    return Path(c.record_dir) / f"scale-{name}.json"


def scale_paths(c: ReproduceConfig) -> list[Path]:
    """Every scale record in record_dir: the warm-up's first, then the arms' by name."""
    found = sorted(Path(c.record_dir).glob("scale-*.json"))
    return sorted(found, key=lambda p: p.stem != f"scale-{WARMUP}")


def arm_folder(c: ReproduceConfig, arm: str, seed: int, start: dict, train: list) -> str:
    """A recorded arm's chosen model in this sitting: its run folder's, or retrained from the warm-up with the
    recorded settings, its dev scores replayed from the record (the same choice, no dev scoring)."""
    replay = iter([point["dev_top1"] for point in json.loads(record_path(c, arm, seed).read_text())["curve"]])
    return arms.train_arm(c, arm, seed, start, train, lambda lm, tokenizer: next(replay))[1]


def scale(c: ReproduceConfig, arm: str, seed: int, folder: str, test: list) -> dict:
    """Sample `scaling_k` answers to each of the first `scaling_questions` test questions, greedy top-1 besides,
    and the critic's score of every sample where the model has a trained value head."""
    scorers = {"critic": load_scorer(folder, c.device, c.dtype)} if has_head(folder) else {}
    if scorers:  # one copy of the LM: the critic's
        lm, tokenizer = scorers["critic"][0].lm, scorers["critic"][1]
    else:
        lm, tokenizer = load_model(folder, c.device, c.dtype)
    torch.manual_seed(0)
    summary, rows = evaluate(lm, tokenizer, test[: c.scaling_questions], "reft", c.eval_max_new_tokens,
                             c.eval_batch_size, k=c.scaling_k, temperature=1.0, desc=f"scale {arm}",
                             answer_format="pcot", scorers=scorers)  # fmt: skip
    source = json.loads((Path(c.record_dir) / arms.WARMUP_RECORD if arm == WARMUP else record_path(c, arm, seed))
                        .read_text())  # fmt: skip
    mark = arms.fingerprint(folder)
    return {
        "model": arm if arm == WARMUP else f"{arm} seed {seed}",
        "fingerprint": mark,
        "same_weights": mark == source.get("fingerprint" if arm == WARMUP else "chosen"),  # False: not recorded
        "same_greedy_answers": sum(r["answer"] == a for r, a in zip(rows, source["test"]["answers"])),
        "summary": summary,
        "questions": [{key: r[key] for key in KEPT if key in r} for r in rows],
    }


def run_scaling(c: ReproduceConfig, start: dict, train: list, test: list) -> None:
    """Every scale:... item of `runs` not yet recorded (an arm needs its record: it is rebuilt from it)."""
    for arm, seed in c.scale_list():
        path = scale_path(c, arm, seed)
        if path.is_file():
            print(f"[reproduce] scale {arm} {seed}: recorded in {path}, skipped")
            continue
        if arm != WARMUP and not record_path(c, arm, seed).is_file():
            raise ValueError(f"scale:{arm}:{seed} needs the arm's record ({record_path(c, arm, seed)}): run it first")
        folder = start["folder"] if arm == WARMUP else arm_folder(c, arm, seed, start, train)
        record = scale(c, arm, seed, folder, test)
        write_record(path, {"config": asdict(c), **record})
        n = len(record["questions"])
        print(f"[reproduce] scale {arm} {seed}: {record['same_greedy_answers']} of {n} greedy answers as recorded")


def verifier_config(c: ReproduceConfig, start: dict) -> VerifierConfig:
    return VerifierConfig(model=start["folder"], **arms.common(c), k=c.verifier_k, temperature=1.0,
                          max_new_tokens=c.max_new_tokens, sample_batch_size=c.eval_batch_size, epochs=1.0,
                          lr=c.verifier_lr, batch_size=8, max_len=384, seed=0,
                          output_dir=str(Path(c.output_dir) / "verifier"))  # fmt: skip


def run_verifier_scores(c: ReproduceConfig, start: dict, train: list) -> None:
    """Train the verifier (unless every scale record is scored), record it, and score the unscored records."""
    todo = [p for p in scale_paths(c) if "scores_verifier" not in json.loads(p.read_text())["questions"][0]]
    if not todo and (Path(c.record_dir) / VERIFIER_RECORD).is_file():
        print("[reproduce] verifier: every scale record is scored, skipped")
        return
    config = verifier_config(c, start)
    folder = run_verifier(config, train)
    rows = read_jsonl(Path(config.output_dir) / "metrics.jsonl")
    samples = read_jsonl(Path(config.output_dir) / "samples.jsonl")
    settings = {f.name: getattr(c, f.name) for f in fields(ReproduceConfig)}
    training = [{k: v for k, v in r.items() if k == "step" or k == "loss" or k.startswith("verifier/")} for r in rows]
    write_record(Path(c.record_dir) / VERIFIER_RECORD, {
        "config": settings, "fingerprint": arms.fingerprint(folder), "warmup": start["fingerprint"],
        "samples": len(samples), "right": int(sum(r["label"] for r in samples)),
        "train_min": sampling_minutes(Path(config.output_dir)) + arms.train_minutes(rows), "training": training,
    })  # fmt: skip
    scorer = load_scorer(folder, c.device, c.dtype)
    for path in todo:
        record = json.loads(path.read_text())
        prompts = [format_prompt(q["question"], "reft", scorer[1]) for q in record["questions"]]
        scores = score_samples(scorer, prompts, [q["samples"] for q in record["questions"]], c.eval_batch_size,
                               f"verifier on {record['model']}")  # fmt: skip
        for q, s in zip(record["questions"], scores):
            q["scores_verifier"] = s
        write_record(path, {**record, "verifier": arms.fingerprint(folder)})
        print(f"[reproduce] verifier: scored the samples of {path}")


def ks(c: ReproduceConfig) -> list[int]:
    """1, 2, 4, ... and scaling_k."""
    return sorted({2**i for i in range(c.scaling_k.bit_length()) if 2**i <= c.scaling_k} | {c.scaling_k})


def scaling_table(c: ReproduceConfig) -> str:
    """Per scale record, each way of choosing at k = scaling_k with its interval, paired against greedy top-1 on
    the same questions (McNemar); empty when nothing is recorded."""
    lines = []
    for path in scale_paths(c):
        record = json.loads(path.read_text())
        at, n = correct_at_k(record["questions"], c.scaling_k), len(record["questions"])
        if not lines:
            lines += ["", f"Accuracy against k: the first {n} test questions, {c.scaling_k} answers each at T = 1 "
                      f"(k = 1, ..., {c.scaling_k} are read from them). Paired with greedy top-1 (McNemar).", "",
                      f"| model | method @ {c.scaling_k} | accuracy (95 % interval) | gained / lost on top-1 | p |",
                      "|---|---|---|---|---|"]  # fmt: skip
        for method, right in at.items():
            versus = paired(at["top-1"], right)
            test = "" if method == "top-1" else f"{versus['only_b']} / {versus['only_a']} | {versus['p']:.2g}"
            lines.append(f"| {record['model']} | {method} | {interval_text(sum(right), n)} | {test or ' |'} |")
    return "\n".join(lines) + ("\n" if lines else "")


def scaling_figure(c: ReproduceConfig) -> list[Path]:
    """scaling.png: accuracy against k, one panel per scale record."""
    curves = {}
    for path in scale_paths(c):
        record = json.loads(path.read_text())
        curves[record["model"]] = accuracy_at_k(record["questions"], ks(c))
    figure = plot_scaling(curves, ks(c), Path(c.record_dir) / "scaling.png") if curves else None
    return [figure] if figure else []
