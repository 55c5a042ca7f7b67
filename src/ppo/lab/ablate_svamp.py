"""The ablation grids on the SVAMP P-CoT setting of the powered experiment (ppo.lab.reproduce): every cell is one of
the experiment's RL arms with a few settings changed, from the same warm-up, on the same questions, at the same 768
sampled answers, selected on dev at the same points, and scored on all 1,000 test questions.

    kl          the reft arm with beta in {0, 0.01 (the arm itself), 0.05, 0.2}, an adaptive beta, and k3
    sampling    the reft arm at temperature {0.7, 1.0, 1.3} x top-p {1.0, 0.9}, 16 answers a step for all
    estimators  GAE, GRPO, RLOO and Dr. GRPO, each with 4 answers to each of 4 questions a step and all else the reft
                arm's (KL k1 in the reward, 2 epochs); beside them the reft and grpo arms as they are

A cell that changes nothing is the experiment's own arm: its record (docs/results/svamp/ARM-seedN.json) is shared,
made by whichever runs it first. The others are recorded in record_dir/ablations/GRID/. Run folders need not
outlive a sitting; finished cells are skipped, so rerunning the same command continues the grid.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ..tasks.stages import preflight
from ..train.checks import check_choices
from . import arms, warmup_builds
from .ablate_svamp_noise import write_noise_report
from .ablate_svamp_report import write_grid_report
from .reproduce_config import WARMUP_SETTINGS, ReproduceConfig, check_record, record_path, write_record

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
    """Comma-separated cell numbers of the grid, from 1 in its table's order (None = every cell)."""
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
        self.picked()

    def picked(self) -> list[Cell]:
        grid = GRIDS[self.grid]
        if self.cells is None:
            return grid
        numbers = [n.strip() for n in self.cells.split(",") if n.strip()]
        if not numbers or not all(n.isdigit() and 1 <= int(n) <= len(grid) for n in numbers):
            raise ValueError(f"--cells takes numbers from 1 to {len(grid)} for the {self.grid} grid (got "
                             f"{self.cells!r})")  # fmt: skip
        return [grid[int(n) - 1] for n in numbers]

    def experiment(self) -> ReproduceConfig:
        return ReproduceConfig(data_dir=self.data_dir, test_questions=self.test_questions, device=self.device,
                               dtype=self.dtype, output_dir=self.output_dir, record_dir=self.record_dir,
                               runs="")  # fmt: skip


def cell_path(c: ReproduceConfig, grid: str, cell: Cell, seed: int) -> Path:
    if not cell.overrides:
        return record_path(c, cell.arm, seed)
    return Path(c.record_dir) / "ablations" / grid / f"{cell.slug}-seed{seed}.json"


def check_cell(c: ReproduceConfig, grid: str, cell: Cell, path: Path) -> None:
    """A cell's record was made with the experiment's settings and this cell's: anything else is refused."""
    check_record(c, path)
    old = json.loads(path.read_text())
    if cell.overrides and (old.get("arm"), old.get("overrides")) != (cell.arm, cell.overrides):
        raise ValueError(f"{path} was made for another cell ({old.get('arm')} with {old.get('overrides')}): move it "
                         f"away, or pass a new --record-dir")  # fmt: skip


def run_grid(c: ReproduceConfig, grid: str, cells: list[Cell], seeds: list[int]) -> str:
    """Every cell x seed not yet recorded, then the grid's report; returns its table (Markdown)."""
    paths = [(cell, seed, cell_path(c, grid, cell, seed)) for cell in cells for seed in seeds]
    if (warm := Path(c.record_dir) / arms.WARMUP_RECORD).is_file():  # every record is checked before any work
        check_record(c, warm, WARMUP_SETTINGS)
    for cell, found in grid_paths(c, grid):  # every record the table will show, not only the cells asked for
        for path in found:
            check_cell(c, grid, cell, path)
    if all(path.is_file() for _, _, path in paths):
        return write_grid_report(c, grid, grid_records(c, grid))
    preflight(arms.warmup_config(c), splits=("train", "test"))
    train, dev, test = arms.splits(c)
    start = warmup_builds.warmup(c, train, dev, test)
    for cell, seed, path in paths:
        if path.is_file():
            print(f"[ablate] {cell.name} seed {seed}: recorded in {path}, skipped")
            continue
        label = f"{grid}-{cell.slug}" if cell.overrides else None
        warmup_builds.record_build(c, start, dev, test)  # once, before the first arm from a build not yet scored
        record = arms.run_arm(c, cell.arm, seed, start, train, dev, test, cell.overrides, label)
        write_record(path, {"config": asdict(c), **({"grid": grid, "cell": cell.name, "overrides": cell.overrides}
                                                    if cell.overrides else {}), **record})  # fmt: skip
        print(f"[ablate] {cell.name} seed {seed}: test top-1 {record['test']['top1']:.1f} %, recorded in {path}")
    return write_grid_report(c, grid, grid_records(c, grid))


def grid_paths(c: ReproduceConfig, grid: str) -> list[tuple[Cell, list[Path]]]:
    """Each cell of the grid with the paths of its records, by seed (every seed recorded, whichever sitting ran it)."""
    out = []
    for cell in GRIDS[grid]:
        folder = cell_path(c, grid, cell, 0).parent
        stem = cell.arm if not cell.overrides else cell.slug
        seeds = {p: p.stem[len(stem) + len("-seed") :] for p in folder.glob(f"{stem}-seed*.json")}
        out.append((cell, sorted((p for p, seed in seeds.items() if seed.isdigit()), key=lambda p: int(seeds[p]))))
    return out


def grid_records(c: ReproduceConfig, grid: str) -> list[tuple[Cell, list[dict]]]:
    return [(cell, [json.loads(p.read_text()) for p in paths]) for cell, paths in grid_paths(c, grid)]


def configurations(c: ReproduceConfig) -> list[tuple[str, list[Path]]]:
    """Every configuration of the three grids with its records by seed, each once (the reft arm is the first cell of
    all three, with one set of records)."""
    seen, out = set(), []
    for grid in GRIDS:
        for cell, paths in grid_paths(c, grid):
            if paths and tuple(paths) not in seen:
                seen.add(tuple(paths))
                out.append((f"{grid}: {cell.name}", paths))
    return out


def run_svamp_ablation(a: SvampAblationConfig) -> str:
    """The grid's cells, its report, and then the report of what all three grids can tell apart."""
    c = a.experiment()
    table = run_grid(c, a.grid, a.picked(), [int(s) for s in a.seeds.split(",")])
    print(f"[ablate] what the grids can tell apart: {write_noise_report(c.record_dir, configurations(c))}")
    return table
