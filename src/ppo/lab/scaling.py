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


def scorers_in(record: dict) -> list[str]:
    return sorted(key[len("scores_") :] for key in record if key.startswith("scores_"))


def accuracy_at_k(records: list[dict], ks: list[int], tolerance: float = 1e-2) -> dict[str, list[float]]:
    """{method: accuracy in percent at each k}: top-1, vote, pass, and rerank_NAME for each scorer. A k beyond the
    samples kept is an error (it would quietly be the largest k)."""
    kept = min(len(r["sample_answers"]) for r in records)
    if max(ks) > kept:
        raise ValueError(f"k = {max(ks)} needs {max(ks)} samples per question; the predictions keep {kept}")
    n, out = len(records), {"top-1": [100.0 * sum(r["correct"] for r in records) / len(records)] * len(ks)}
    choosers = {"vote": lambda r, k: majority_vote(r["sample_answers"][:k])}
    for name in scorers_in(records[0]):
        choosers[f"rerank_{name}"] = lambda r, k, s=f"scores_{name}": rerank(r["sample_answers"][:k], r[s][:k])
    for method, choose in choosers.items():
        out[method] = [100.0 * sum(is_correct(choose(r, k), r["gold"], tolerance) for r in records) / n for k in ks]
    out["pass"] = [100.0 * sum(any(is_correct(a, r["gold"], tolerance) for a in r["sample_answers"][:k])
                               for r in records) / n for k in ks]  # fmt: skip
    return out


def plot_scaling(curves: dict[str, dict[str, list[float]]], ks: list[int], path: Path) -> Path:
    """One panel per model ({model: accuracy_at_k}), accuracy against k on a log axis (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import save

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.8), squeeze=False)
    for ax, (model, methods) in zip(axes[0], curves.items()):
        for method, values in methods.items():
            ax.plot(ks, values, marker="o", linestyle="--" if method == "pass" else "-", label=method)
        ax.set(xscale="log", xlabel="samples per question, k", ylabel="accuracy %", title=model)
        ax.set_xticks(ks, [str(k) for k in ks])
    axes[0][-1].legend(fontsize=8)
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
    print(f"[scaling] {plot_scaling(curves, ks, Path(args.out))}")


if __name__ == "__main__":
    main()
