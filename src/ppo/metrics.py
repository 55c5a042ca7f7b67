"""Metrics: averaging per-minibatch stats and writing one JSON line per step."""
from __future__ import annotations

import json
import math
from pathlib import Path


def mean_stats(stats: list[dict[str, float]]) -> dict[str, float]:
    """Average a list of stat dicts key by key (keys missing from some dicts average over the rest)."""
    keys = {k for s in stats for k in s}
    return {k: sum(s[k] for s in stats if k in s) / sum(k in s for s in stats) for k in sorted(keys)}


def all_finite(metrics: dict[str, float]) -> bool:
    """True when no metric is NaN or infinite."""
    return all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))


class JsonlLogger:
    """Append one JSON object per line to `path` (created with its folder)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def format_metrics(metrics: dict[str, float], keys: list[str]) -> str:
    """A short one-line summary of chosen metrics, for the progress bar."""
    short = {k.split("/")[-1]: metrics[k] for k in keys if k in metrics}
    return " ".join(f"{k}={v:.3g}" for k, v in short.items())
