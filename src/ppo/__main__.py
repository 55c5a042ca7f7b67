"""`python -m ppo COMMAND [settings]`: the library's commands. `python -m ppo COMMAND --help` lists the settings.

    sft        warm-up SFT on a math task            ppo-sft        (ppo.tasks.stages)
    rl         PPO from any checkpoint               ppo-rl         (ppo.tasks.stages)
    evaluate   accuracy of a model on a split        ppo-evaluate   (ppo.tasks.evaluate)
    reft       SFT, PPO and the comparison table     ppo-reft       (ppo.tasks.pipeline)
    verifier   a verifier for rerank@k               ppo-verifier   (ppo.tasks.verifier_stage)
    offline-st Offline-ST, the paper's baseline                     (ppo.tasks.self_training)
    online-st  Online-ST, the paper's baseline                      (ppo.tasks.self_training)
    metrics    a run's curves as a Markdown table    ppo-metrics    (ppo.train.metrics)
    bench      the memory probe of the benchmark                    (ppo.lab.bench_memory)

The second column: the same commands as console scripts, which `make install` puts in .venv/bin. `--debug` shows
the traceback of an error that is otherwise one line.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "sft": ("ppo.tasks.stages", "sft_main"),
    "rl": ("ppo.tasks.stages", "ppo_main"),
    "evaluate": ("ppo.tasks.evaluate", "main"),
    "reft": ("ppo.tasks.pipeline", "main"),
    "verifier": ("ppo.tasks.verifier_stage", "main"),
    "offline-st": ("ppo.tasks.self_training", "offline_main"),
    "online-st": ("ppo.tasks.self_training", "online_main"),
    "metrics": ("ppo.train.metrics", "main"),
    "bench": ("ppo.lab.bench_memory", "main"),
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m ppo {{{','.join(COMMANDS)}}} [settings]; --help after a command lists them")
    module, function = COMMANDS[argv[0]]
    sys.argv[0] = f"python -m ppo {argv[0]}"  # what argparse shows as the program in --help and errors
    getattr(importlib.import_module(module), function)(argv[1:])


if __name__ == "__main__":
    main()
