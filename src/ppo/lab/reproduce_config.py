"""The SVAMP experiment's settings (`ReproduceConfig`) and its records: the small files in `record_dir` that let
it span sittings (ppo.lab.reproduce runs it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..lm.models import check_device, check_dtype
from ..train.checks import AT_LEAST_ONE, NONE_OR_AT_LEAST_ONE, POSITIVE, UNIT, check_fields

ARMS = ("reft", "sft-continued", "grpo", "trl-grpo", "offline-st", "online-st")
NOT_SETTINGS = ("runs", "output_dir", "record_dir")  # what may differ between the sittings of one experiment
# What only the accuracy-against-k records depend on (ppo.lab.reproduce_scaling), not the arms'.
SCALING_SETTINGS = ("scaling_questions", "scaling_k", "verifier_k", "verifier_lr")
# What the base model's scores depend on (ppo.lab.arms.base)
BASE_SETTINGS = ("data_dir", "model", "dev_size", "test_questions", "eval_max_new_tokens", "eval_batch_size", "device",
                 "dtype")  # fmt: skip
# What the warm-up and its scores depend on: its record holds for any experiment that shares these.
WARMUP_SETTINGS = ("data_dir", "model", "train_questions", "dev_size", "test_questions", "warmup_epochs", "warmup_lr",
                   "eval_max_new_tokens", "eval_batch_size", "device", "dtype")  # fmt: skip


@dataclass(frozen=True)
class ReproduceConfig:
    """The experiment's settings; the defaults are the CPU preset (docs/results.md says how long it takes)."""

    data_dir: str = "../shared/data/svamp"
    """SVAMP folder (train_python_sdp.json, test.json)."""
    model: str = "smollm2-135m"
    """The base model the warm-up starts from."""
    train_questions: int = 800
    """Training questions: the warm-up's, and every arm's (the first N of train after the dev split)."""
    dev_size: int = 200
    """Dev split carved from train (seed 0), used for every selection and never trained on."""
    test_questions: int | None = None
    """Test questions every model is scored on (None = all 1,000; fewer only for a quick look)."""
    warmup_epochs: float = 1.0
    """Warm-up SFT epochs over the training questions."""
    warmup_lr: float = 2e-5
    """Warm-up SFT learning rate (linear decay; SFT-continued uses it too)."""
    samples: int = 768
    """The budget: sampled answers per RL arm."""
    completions_per_step: int = 16
    """Sampled answers per RL step (ReFT: 16 questions x 1; GRPO: 16 / group questions x group)."""
    group: int = 4
    """Answers per question for the GRPO arms (ReFT samples 1, as the paper)."""
    points: int = 4
    """Dev scorings per arm, evenly spaced over its budget; the best one is the arm's model."""
    max_new_tokens: int = 192
    """Response length limit when sampling in RL (P-CoT programs here: 100 tokens median, 179 at the 99th %)."""
    eval_max_new_tokens: int = 256
    """Response length limit on dev and test (greedy), the same for every model."""
    lr: float = 3e-6
    """Learning rate of every RL arm (constant)."""
    kl_coef: float = 0.01
    """beta of every RL arm (the paper's P-CoT value)."""
    lam: float = 1.0
    """GAE lambda of the reft arm (the paper's is 0.95: docs/results.md, "Probes", says why 1.0 here)."""
    micro_batch_size: int = 8
    """Sequences per forward/backward pass in our trainers."""
    eval_batch_size: int = 64
    """Questions decoded together on dev and test."""
    runs: str = ("reft:0,sft-continued:0,grpo:0,trl-grpo:0,reft:1,sft-continued:1,offline-st:0,online-st:0,base,"
                 "scale:warmup,scale:reft:1,verifier")  # fmt: skip
    """Comma-separated work, done in this order: arm:seed pairs (arms: reft, sft-continued, grpo, trl-grpo,
    offline-st, online-st); base, the base model before the warm-up, scored on dev and test; scale:warmup and
    scale:ARM:SEED, accuracy against k of the warm-up or a recorded arm's
    chosen model (rebuilt when its run folder is gone); verifier, a verifier trained on the warm-up's own answers,
    which scores every scale record's samples."""
    scaling_questions: int = 100
    """scale: the first N test questions, each sampled `scaling_k` times."""
    scaling_k: int = 16
    """scale: answers sampled per question (T = 1), read at k = 1, 2, 4, ... up to this."""
    verifier_k: int = 1
    """verifier: answers sampled per training question from the warm-up (T = 1), labelled and trained on (the paper
    samples 100; here each 8 answers cost a 14 s step, so 1 per question keeps the verifier to about 30 min)."""
    verifier_lr: float = 2e-5
    """verifier: learning rate (1 epoch, batches of 8, linear decay)."""
    device: str = "auto"
    """auto, cpu, cuda."""
    dtype: str = "auto"
    """auto = bf16 on GPU, fp32 on CPU."""
    output_dir: str = "runs/reproduce-svamp"
    """Checkpoints and logs (need not outlive a sitting)."""
    record_dir: str = "docs/results/svamp"
    """The records a later sitting resumes from, the table and the figures (small; committed)."""

    def __post_init__(self) -> None:
        counts = ("train_questions", "dev_size", "samples", "completions_per_step", "group", "points",
                  "max_new_tokens", "eval_max_new_tokens", "micro_batch_size", "eval_batch_size",
                  "scaling_questions", "scaling_k", "verifier_k")  # fmt: skip
        check_fields(self, {**dict.fromkeys(counts, AT_LEAST_ONE), "warmup_epochs": POSITIVE, "lr": POSITIVE,
                            "warmup_lr": POSITIVE, "kl_coef": POSITIVE, "verifier_lr": POSITIVE,
                            "lam": UNIT,
                            "test_questions": NONE_OR_AT_LEAST_ONE})  # fmt: skip
        check_device(self.device)
        check_dtype(self.dtype)
        if self.samples % self.completions_per_step or self.completions_per_step % self.group:
            raise ValueError(f"--samples ({self.samples}) must be a multiple of --completions-per-step "
                             f"({self.completions_per_step}), and that of --group ({self.group})")  # fmt: skip
        if self.group < 2:
            raise ValueError(f"--group must be at least 2: GRPO compares answers to one question (got {self.group})")
        if self.rl_steps % self.points or self.sft_steps % self.points:
            raise ValueError(f"--points ({self.points}) must divide the RL steps ({self.rl_steps}) and the "
                             f"SFT-continued steps ({self.sft_steps})")  # fmt: skip
        k, questions = self.offline_sampling
        exact = k * questions == self.samples and questions <= self.train_questions
        if "offline-st" in dict(self.run_list()) and not exact:
            raise ValueError(f"offline-st draws --samples ({self.samples}) answers as k to each of the first "
                             f"questions: they must divide evenly over at most --train-questions "
                             f"({self.train_questions})")  # fmt: skip

    @property
    def rl_steps(self) -> int:
        return self.samples // self.completions_per_step

    @property
    def sft_steps(self) -> int:
        """SFT-continued makes as many passes over the questions as ReFT (one answer per question) does, in batches
        of 8 as the warm-up."""
        return self.samples // 8

    @property
    def offline_sampling(self) -> tuple[int, int]:
        """Offline-ST's draw of `samples` answers from the warm-up: (k answers per question, first questions)."""
        k = max(1, self.samples // self.train_questions)
        return k, self.samples // k

    def work(self) -> list[tuple[str, str, int]]:
        """`runs` parsed: (kind, arm, seed) with kind "arm" or "scale" (arm "warmup" for the warm-up, seed 0), or
        ("verifier", "", 0) or ("base", "", 0)."""
        items = []
        for item in (i.strip() for i in self.runs.split(",") if i.strip()):
            kind, model = ("scale", item[len("scale:") :]) if item.startswith("scale:") else ("arm", item)
            arm, _, seed = model.partition(":")
            if item in ("verifier", "base"):
                items.append((item, "", 0))
            elif kind == "scale" and model == "warmup":
                items.append(("scale", "warmup", 0))
            elif arm in ARMS and seed.isdigit():
                items.append((kind, arm, int(seed)))
            else:
                raise ValueError(f"--runs takes arm:seed pairs with arms {', '.join(ARMS)}, base, scale:warmup, "
                                 f"scale:ARM:SEED and verifier (got {item!r})")  # fmt: skip
        if self.scaling_k < 2 and any(kind == "scale" for kind, _, _ in items):
            raise ValueError(f"--scaling-k must be at least 2 to compare ways of choosing (got {self.scaling_k})")
        return items

    def run_list(self) -> list[tuple[str, int]]:
        """The arm:seed pairs of `runs`, in order."""
        return [(arm, seed) for kind, arm, seed in self.work() if kind == "arm"]

    def scale_list(self) -> list[tuple[str, int]]:
        """The models of `runs` whose accuracy against k is measured: ("warmup", 0) or (arm, seed)."""
        return [(arm, seed) for kind, arm, seed in self.work() if kind == "scale"]


def record_path(c: ReproduceConfig, arm: str, seed: int) -> Path:
    return Path(c.record_dir) / f"{arm}-seed{seed}.json"


def recorded_runs(c: ReproduceConfig) -> list[tuple[str, int]]:
    """`runs`, then every other arm x seed with a record in record_dir (earlier sittings' arms), by arm and seed:
    what the report shows and what is checked before any work."""
    found = [
        (arm, int(p.stem[len(arm) + len("-seed") :]))
        for arm in ARMS
        for p in Path(c.record_dir).glob(f"{arm}-seed*.json")
        if p.stem[len(arm) + len("-seed") :].isdigit()
    ]
    return c.run_list() + sorted(
        (run for run in found if run not in c.run_list()), key=lambda r: (ARMS.index(r[0]), r[1])
    )


def check_record(c: ReproduceConfig, path: Path, keys: tuple[str, ...] | None = None) -> None:
    """A record made with other settings (of `keys`, default all but NOT_SETTINGS and SCALING_SETTINGS) is refused,
    naming them: it would be silently mixed into the table."""
    old, new = json.loads(path.read_text())["config"], asdict(c)
    keys = keys or tuple(k for k in new if k not in SCALING_SETTINGS)
    differ = sorted(k for k in keys if k not in NOT_SETTINGS and old.get(k) != new[k])
    if differ:
        raise ValueError(f"{path} was made with other settings ({', '.join(f'{k}: {old.get(k)!r}' for k in differ)}):"
                         f" move it away, or pass a new --record-dir")  # fmt: skip


def read_record(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)
