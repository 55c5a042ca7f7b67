"""The ablation grids on the SVAMP P-CoT setting of the powered experiment (ppo.lab.reproduce): every cell is one of
the experiment's RL arms with a few settings changed, from the same warm-up, on the same questions, at the same 768
sampled answers, selected on dev at the same points, and scored on all 1,000 test questions.

    kl          the reft arm with beta in {0, 0.01 (the arm itself), 0.05, 0.2}, an adaptive beta, and k3
    sampling    the reft arm at temperature {0.7, 1.0, 1.3} x top-p {1.0, 0.9}, 16 answers a step for all
    estimators  GAE, GRPO, RLOO and Dr. GRPO, each with 4 answers to each of 4 questions a step and all else the reft
                arm's (KL k1 in the reward, 2 epochs); beside them the reft and grpo arms as they are

A cell that changes nothing is the experiment's own arm: its record (docs/results/svamp/ARM-seedN.json) is shared,
made by whichever runs it first. The others are recorded in record_dir/ablations/GRID/. Run folders need not
outlive a sitting; finished cells are skipped, so rerunning the same command continues the grid. Once every cell has
its first seed, `--cells near-best --seeds 1` runs the second seed of the cells the first pass found near the best.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..tasks.stages import preflight
from . import arms, warmup_builds
from .ablate_svamp_config import GRIDS, NEAR_BEST_CELLS, Cell, SvampAblationConfig
from .ablate_svamp_noise import write_noise_report
from .ablate_svamp_report import FIRST_PASS_SEED, first_pass, near_best, write_grid_report
from .reproduce_config import WARMUP_SETTINGS, ReproduceConfig, check_record, record_path, write_record


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
        return write_reports(c, grid)
    preflight(arms.warmup_config(c), splits=("train", "test"))
    train, dev, test = arms.splits(c)
    start = warmup_builds.warmup(c, train, dev, test)
    table = ""  # rewritten by every record; a grid with all its cells recorded returned above
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
        table = write_reports(c, grid)  # after every record, so that a run of several cells shows each as it lands
    return table


def write_reports(c: ReproduceConfig, grid: str) -> str:
    """The grid's table.md and figures, then noise.md over all three grids; returns the grid's table (Markdown)."""
    table = write_grid_report(c, grid, grid_records(c, grid))
    noise = write_noise_report(c.record_dir, configurations(c), grid_cells(c))
    print(f"[ablate] what the grids can tell apart: {noise}")
    return table


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


def near_best_cells(c: ReproduceConfig, grid: str) -> list[Cell]:
    """--cells near-best: the cells whose first seed's dev is within NEAR_BEST points of the grid's best first seed.
    Refused until every cell has its first seed, since a cell not yet run could be the best."""
    rows = grid_records(c, grid)
    if missing := [str(number) for number, (_, recs) in enumerate(rows, 1) if not first_pass(recs)]:
        raise ValueError(f"--cells {NEAR_BEST_CELLS} needs the {grid} grid's first pass: cell(s) {', '.join(missing)} "
                         f"have no seed-{FIRST_PASS_SEED} record in {c.record_dir} yet (run them first)")  # fmt: skip
    return [rows[number - 1][0] for number in near_best(rows)]


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


def grid_cells(c: ReproduceConfig) -> dict[str, list[tuple[str, list[Path]]]]:
    """Each grid's cells, numbered as in its table, with their records by seed (none for a cell not yet run)."""
    return {grid: [(f"{n}. {cell.name}", paths) for n, (cell, paths) in enumerate(grid_paths(c, grid), 1)]
            for grid in GRIDS}  # fmt: skip


def run_svamp_ablation(a: SvampAblationConfig) -> str:
    """The grid's cells, with its report and that of what all three grids can tell apart after each."""
    c = a.experiment()
    cells = near_best_cells(c, a.grid) if a.cells == NEAR_BEST_CELLS else a.picked()
    return run_grid(c, a.grid, cells, [int(s) for s in a.seeds.split(",")])
