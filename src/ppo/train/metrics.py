"""Metrics: what a rollout looked like, averaging per-minibatch stats, one JSON line per step, and timing."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from ..core.kl import kl_estimate
from ..core.losses import explained_variance
from ..core.masked import masked_mean
from . import distributed
from .cli import Parser, command


def mean_stats(stats: list[dict[str, float]]) -> dict[str, float]:
    """Average a list of stat dicts key by key (keys missing from some dicts average over the rest)."""
    keys = {k for s in stats for k in s}
    return {k: sum(s[k] for s in stats if k in s) / sum(k in s for s in stats) for k in sorted(keys)}


def mean_over_ranks(metrics: dict[str, float]) -> dict[str, float]:
    """Each metric averaged over ranks. Ranks hold equal numbers of rollouts, so a per-rollout mean is exact;
    a per-token one (value/mean, explained variance) is the mean of the ranks' values."""
    return metrics if distributed.world_size() == 1 else mean_stats(distributed.gather([metrics]))


def rollout_stats(
    batch, kl: torch.Tensor, truncated: torch.Tensor, kl_coef: float, correct_score: float, critic: bool = True
) -> dict:
    """What a PPO step's rollout looked like (a `RolloutBatch` and its per-token KL, (B, T), by the reward's
    estimator): score, KL to the reference (and k1's estimate of it beside, whatever the estimator), lengths, and
    how good the critic is (when there is one)."""
    mask = batch.response_mask  # (B, T)
    k1 = kl_estimate(batch.old_logprobs, batch.ref_logprobs, "k1")  # (B, T)
    stats = {
        "objective/score": batch.scores.mean().item(),
        "objective/kl": (kl * mask).sum(1).mean().item(),  # mean sequence KL, sum over tokens
        "objective/kl_k1": (k1 * mask).sum(1).mean().item(),  # the same by k1, to compare k2 or k3 runs with k1's
        "objective/kl_coef": kl_coef,
        "objective/reward": (batch.rewards * mask).sum(1).mean().item(),
        "objective/accuracy": (batch.scores >= correct_score).float().mean().item(),
        "response/length": mask.sum(1).mean().item(),
        "response/truncated_frac": truncated.float().mean().item(),
    }
    if critic:
        stats["value/mean"] = masked_mean(batch.old_values, mask).item()
        stats["value/explained_var"] = explained_variance(batch.old_values, batch.returns, mask)
    return stats


def all_finite(metrics: dict[str, float]) -> bool:
    """True when no metric is NaN or infinite."""
    return all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))


def json_safe(record: dict) -> dict:
    """NaN and infinities become null: JSON has no literal for them (explained variance is NaN for constant
    returns), and a strict reader would reject the whole line."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


class MetricsLogger:
    """Append one JSON object per line to `path` (created with its folder), valid JSON: a NaN metric is written as
    null (`json_safe`). With `tensorboard` (a folder), every number is also a TensorBoard scalar under the same
    name, at the record's "step"; a run (re)started after `start_step` steps (0 for a fresh start) first tells
    TensorBoard to drop what an earlier try logged past that step, as `truncate_log` does for the JSONL. Under
    torchrun, rank 0 writes.

    `elapsed()` is the run's wall time so far: the seconds since this logger was made, plus the "time/elapsed_s"
    of the last record already in `path` (the step a resumed run continues from), so that curves can be drawn
    against minutes across resumes. The time an interrupted try spent past its checkpoint is not counted."""

    def __init__(self, path: str | Path, tensorboard: str | Path | None = None, start_step: int = 0):
        self.path = Path(path)
        self.writer = None
        self.start, self.before = time.perf_counter(), last_elapsed(self.path)
        if distributed.is_main():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard is not None:
                from torch.utils.tensorboard import SummaryWriter  # optional: checked by ModelSettings

                self.writer = SummaryWriter(str(tensorboard), purge_step=start_step + 1)

    @distributed.main_only
    def log(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(json_safe(record), sort_keys=True, allow_nan=False) + "\n")
        if self.writer is not None:
            for name, value in record.items():
                if name != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(name, value, record["step"])
            self.writer.flush()

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.start

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def last_elapsed(path: Path) -> float:
    """The "time/elapsed_s" of the last record of a metrics file, 0 when there is none."""
    records = read_jsonl(path) if path.is_file() else []
    return float(records[-1].get("time/elapsed_s") or 0.0) if records else 0.0


def format_metrics(metrics: dict[str, float], keys: list[str]) -> str:
    """A short one-line summary of chosen metrics, for the progress bar."""
    short = {k.split("/")[-1]: metrics[k] for k in keys if k in metrics}
    return " ".join(f"{k}={v:.3g}" for k, v in short.items())


PPO_BAR_KEYS = ["objective/score", "objective/kl", "loss/value", "health/bad_steps"]  # PPO's progress bar
CURVE_KEYS = [
    "objective/score",
    "objective/accuracy",
    "objective/kl",
    "response/length",
    "response/truncated_frac",
    "policy/clipfrac",
    "value/explained_var",
]


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def cell(record: dict, key: str) -> str:
    """A metric for a table: 3 significant digits; blank where it is missing, null where it was NaN."""
    value = record.get(key, "")
    return "null" if value is None else value if isinstance(value, str) else f"{value:.3g}"


def curve_table(records: list[dict], keys: list[str], every: int = 1) -> str:
    """A Markdown table of metrics against step, every `every` steps (and always the last)."""
    keep = [r for i, r in enumerate(records) if i % every == 0 or i == len(records) - 1]
    lines = ["| step | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += ["| " + " | ".join([str(r.get("step", "")), *(cell(r, k) for k in keys)]) + " |" for r in keep]
    return "\n".join(lines)


@command
def main(argv: list[str] | None = None) -> None:
    """`ppo-metrics RUN/metrics.jsonl [--every N]`: print a run's curves as a Markdown table."""
    parser = Parser(description=main.__doc__)
    parser.add_argument("path")
    parser.add_argument("--every", type=int, default=1, help="print every N-th step")
    parser.add_argument("--keys", nargs="+", default=CURVE_KEYS, help="metric names")
    args = parser.parse_args(argv)
    if args.every < 1:
        raise ValueError(f"--every must be an integer >= 1 (got {args.every})")
    print(curve_table(read_jsonl(args.path), args.keys, args.every))


class Timer:
    """Wall time of consecutive phases: lap(name) records the seconds since the previous lap."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self.start = self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.laps["time/step_s"] = now - self.start
        self.last = now


def matmul_peak(device, dtype) -> float:
    """FLOP/s of the best of 6 square matmuls of 4096 (2 n^3 FLOPs each), in this process."""
    a, times = torch.randn(4096, 4096, device=device, dtype=dtype), []
    for _ in range(6):
        sync(device)
        start = time.perf_counter()
        a @ a
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * 4096**3 / min(times)


def sync(device) -> None:  # GPU work is asynchronous: wait for it before reading the clock
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
