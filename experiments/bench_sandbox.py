"""Throughput of the sandboxed executor on real P-CoT programs (the SVAMP training programs).

    make bench-sandbox            # 64 programs a batch, 5 batches, one worker per core

Prints the median time of a batch and programs per second, and checks every answer against the gold one.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ppo.tasks.data import load_examples
from ppo.tasks.sandbox import default_workers, run_programs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/svamp", help="folder with train_python_sdp.json")
    parser.add_argument("--batch", type=int, default=64, help="programs per run_programs call")
    parser.add_argument("--repeats", type=int, default=5, help="batches to time")
    parser.add_argument("--workers", type=int, default=None, help="programs at once (default: one per core)")
    args = parser.parse_args(argv)
    examples = load_examples("svamp", args.data_dir, "train", "pcot")
    times, correct = [], 0
    for r in range(args.repeats):
        batch = examples[r * args.batch : (r + 1) * args.batch]
        start = time.perf_counter()
        values = run_programs([ex.solution for ex in batch], workers=args.workers)
        times.append(time.perf_counter() - start)
        correct += sum(isinstance(v, (int, float)) and abs(v - ex.answer) <= 1e-2 for v, ex in zip(values, batch))
    median = statistics.median(times)
    print(
        f"{args.batch} programs, {args.workers or default_workers()} workers: median {median:.2f} s a batch "
        f"(min {min(times):.2f}, max {max(times):.2f}), {args.batch / median:.0f} programs/s; "
        f"{correct}/{args.batch * args.repeats} answers equal the gold ones"
    )


if __name__ == "__main__":
    main()
