"""Accuracy against the number of samples k, from one evaluation's predictions (the ReFT paper's inference-time
scaling: its Voting@100 and Rerank@100 columns).

An evaluation at `--k K` keeps every sample's answer, and each scorer's score of it (`ppo-evaluate --k K
--rerank-critic --verifier ...`, predictions.jsonl). Every k <= K is then read from the first k samples of each
question, so one run gives the whole curve:

    top-1       the greedy answer (the same at every k)
    vote@k      the most common of the first k answers (a tie to the answer seen first)
    pass@k      any of the first k answers right (an upper bound for any way of choosing one)
    rerank@k    the first k answers' highest-scored one, by each scorer in the predictions

    python -m ppo.lab.scaling runs/eval-sft/predictions.jsonl runs/eval-reft/predictions.jsonl --out scaling.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..tasks.evaluate import is_correct, majority_vote
from ..tasks.rerank import rerank
from .plotting import pyplot, save


def scorers_in(record: dict) -> list[str]:
    return sorted(key[len("scores_") :] for key in record if key.startswith("scores_"))


def correct_at_k(records: list[dict], k: int, tolerance: float = 1e-2) -> dict[str, list[bool]]:
    """{method: whether each question's chosen answer is right} at one k: top-1, vote, rerank_NAME for each scorer,
    and pass (any of the first k right). A k beyond the samples kept is an error (it would quietly be the largest)."""
    kept = min(len(r["sample_answers"]) for r in records)
    if k > kept:
        raise ValueError(f"k = {k} needs {k} samples per question; the predictions keep {kept}")
    choosers = {"vote": lambda r: majority_vote(r["sample_answers"][:k])}
    for name in scorers_in(records[0]):
        choosers[f"rerank_{name}"] = lambda r, s=f"scores_{name}": rerank(r["sample_answers"][:k], r[s][:k])
    out = {"top-1": [bool(r["correct"]) for r in records]}
    for method, choose in choosers.items():
        out[method] = [is_correct(choose(r), r["gold"], tolerance) for r in records]
    out["pass"] = [any(is_correct(a, r["gold"], tolerance) for a in r["sample_answers"][:k]) for r in records]
    return out


def accuracy_at_k(records: list[dict], ks: list[int], tolerance: float = 1e-2) -> dict[str, list[float]]:
    """{method: accuracy in percent at each k}, the methods of `correct_at_k`."""
    at = [correct_at_k(records, k, tolerance) for k in ks]
    return {method: [100.0 * sum(c[method]) / len(records) for c in at] for method in at[0]}


def plot_scaling(curves: dict[str, dict[str, list[float]]], ks: list[int], path: Path) -> Path | None:
    """One panel per model ({model: accuracy_at_k}), accuracy against k on a log axis; None, with a one-line
    notice, where matplotlib (the `plots` extra) is not installed."""
    if (plt := pyplot("scaling")) is None:
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.8), squeeze=False)
    methods = list(dict.fromkeys(m for per_model in curves.values() for m in per_model))  # in order of first use
    colours = {m: f"C{i}" for i, m in enumerate(methods)}  # a method keeps its colour in every panel
    for ax, (model, per_model) in zip(axes[0], curves.items()):
        for method, values in per_model.items():
            ax.plot(ks, values, marker="o", linestyle="--" if method == "pass" else "-", label=method,
                    color=colours[method])  # fmt: skip
        ax.set(xscale="log", xlabel="samples per question, k", ylabel="accuracy %", title=model)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.legend(fontsize=8)  # each panel names its own methods: the models' scorers can differ
    return save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ppo.lab.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", nargs="+", help="predictions.jsonl of ppo-evaluate runs, one per model")
    parser.add_argument("--ks", default="1,4,8,16", help="the k to read, comma-separated (default 1,4,8,16)")
    parser.add_argument("--out", default="scaling.png", help="the figure to write")
    args = parser.parse_args(argv)
    ks, curves = [int(k) for k in args.ks.split(",")], {}
    for path in args.predictions:
        records = [json.loads(line) for line in Path(path).read_text().splitlines()]
        name = Path(path).parent.name
        curves[name] = accuracy_at_k(records, ks)
        print(name, json.dumps({method: [round(v, 1) for v in values] for method, values in curves[name].items()}))
    if (figure := plot_scaling(curves, ks, Path(args.out))) is not None:
        print(f"[scaling] {figure}")


if __name__ == "__main__":
    main()
