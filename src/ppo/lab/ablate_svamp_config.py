"""The settings of the ablation grids on the SVAMP P-CoT setting (ppo.lab.ablate_svamp): the cells of each grid,
each an arm of the experiment with the settings it changes, and the command line's choice of grid, cells and seeds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..train.checks import check_choices
from .reproduce_config import ReproduceConfig

NEAR_BEST_CELLS = "near-best"  # --cells: the cells the first pass found near the best (ablate_svamp_report.near_best)

# Both assume the experiment's 16 answers a step, which SvampAblationConfig does not let change. The adaptive
# controller's horizon of 128 sequences is then 8 steps, which lets beta move by up to 2.5 % a step (the default
# horizon of 10,000 would move it by 1.6 % in the whole run).
ADAPTIVE = {"adaptive_kl": True, "kl_target": 0.5, "kl_horizon": 128}
GROUP = {"samples_per_prompt": 4, "rollout_batch_size": 4}  # 4 answers to each of 4 questions: 16 a step
ESTIMATORS = ("gae", "grpo", "rloo", "dr_grpo")


@dataclass(frozen=True)
class Cell:
    name: str
    arm: str
    """The experiment's arm the cell starts from: reft or grpo."""
    overrides: dict
    """The PPOConfig settings it changes; none = the arm itself."""

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "-", self.name).strip("-")


GRIDS: dict[str, list[Cell]] = {
    "kl": [
        Cell("beta=0.01 (the reft arm)", "reft", {}),
        *(Cell(f"beta={b}", "reft", {"kl_coef": b}) for b in (0.0, 0.05, 0.2)),
        Cell("adaptive beta, target 0.5 nats", "reft", ADAPTIVE),
        Cell("beta=0.01, k3", "reft", {"kl_estimator": "k3"}),
    ],
    "sampling": [
        Cell("T=1.0, top-p=1.0 (the reft arm)", "reft", {}),
        *(
            Cell(f"T={t}, top-p={p}", "reft", {"temperature": t, "top_p": p})
            for t in (0.7, 1.0, 1.3)
            for p in (1.0, 0.9)
            if (t, p) != (1.0, 1.0)
        ),
    ],
    "estimators": [
        Cell("gae, 1 answer x 16 questions (the reft arm)", "reft", {}),
        Cell("grpo, k3 in the loss, 1 epoch (the grpo arm)", "grpo", {}),
        *(Cell(f"{a}, 4 answers x 4 questions", "reft", {**GROUP, "advantage": a}) for a in ESTIMATORS),
    ],
}


@dataclass(frozen=True)
class SvampAblationConfig:
    """One grid on the SVAMP P-CoT setting; every other setting is the experiment's (ReproduceConfig's defaults),
    so that its warm-up and arms are shared."""

    grid: Literal["kl", "sampling", "estimators"] = "kl"
    """Which grid: kl, sampling or estimators (ppo.lab.ablate_svamp)."""
    seeds: str = "0"
    """Comma-separated seeds; each cell runs once per seed."""
    cells: str | None = None
    """Comma-separated cell numbers of the grid, from 1 in its table's order; or near-best: the cells whose first
    seed's dev top-1 is within 3 points of the grid's best first seed, which are due a second seed, once every cell
    has its first seed (None = every cell)."""
    data_dir: str = "../shared/data/svamp"
    """SVAMP folder (train_python_sdp.json, test.json)."""
    test_questions: int | None = None
    """Test questions each cell is scored on (None = all 1,000; fewer only for a quick look, in its own
    --record-dir)."""
    device: str = "auto"
    """auto, cpu, cuda."""
    dtype: str = "auto"
    """auto = bf16 on GPU, fp32 on CPU."""
    output_dir: str = "runs/reproduce-svamp"
    """Checkpoints and logs (the experiment's: its warm-up is reused)."""
    record_dir: str = "docs/results/svamp"
    """The experiment's records; the grid's go to its ablations/GRID/ (small; committed)."""

    def __post_init__(self) -> None:
        check_choices(self)
        if not all(s.strip().isdigit() for s in self.seeds.split(",")):
            raise ValueError(f"--seeds must be comma-separated integers >= 0, like 0,1 (got {self.seeds!r})")
        if self.cells != NEAR_BEST_CELLS:
            self.picked()

    def picked(self) -> list[Cell]:
        """The cells asked for by number (near-best needs the records: ablate_svamp.near_best_cells)."""
        grid = GRIDS[self.grid]
        if self.cells is None:
            return grid
        numbers = [n.strip() for n in self.cells.split(",") if n.strip()]
        if not numbers or not all(n.isdigit() and 1 <= int(n) <= len(grid) for n in numbers):
            raise ValueError(f"--cells takes numbers from 1 to {len(grid)} for the {self.grid} grid, or "
                             f"{NEAR_BEST_CELLS} (got {self.cells!r})")  # fmt: skip
        return [grid[int(n) - 1] for n in numbers]

    def experiment(self) -> ReproduceConfig:
        return ReproduceConfig(data_dir=self.data_dir, test_questions=self.test_questions, device=self.device,
                               dtype=self.dtype, output_dir=self.output_dir, record_dir=self.record_dir,
                               runs="")  # fmt: skip
