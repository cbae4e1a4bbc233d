"""Fuzz the corpus readers: generated inputs of every format, each read beside a good file.

Prints how many inputs were tried, how many were handled (no exception, the good file kept, within the
per-file time budget plus slack) and the slowest ones. Seeded: the same arguments try the same inputs.

    python benchmarks/fuzz_readers.py --inputs 5000 --seed 1
    python benchmarks/fuzz_readers.py --inputs 0 --targeted 1000   # the families issue 21 found missing
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.limits import ReadLimits  # noqa: E402
from tests.hostile_inputs import generated_input, hostile_cases, read_beside_good, targeted_input  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=5000, help="generated inputs to try (default 5000)")
    parser.add_argument("--targeted", type=int, default=0,
                        help="inputs of the targeted families (surrogates, row bombs, ...) to try (default 0)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--budget", type=float, default=3.0, help="max_seconds_per_file for each read (default 3)")
    parser.add_argument("--show", type=int, default=5, help="slowest inputs listed (default 5)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the readers log each boundary catch; the failures are counted here
    limits = ReadLimits(max_seconds_per_file=args.budget)
    rng = random.Random(args.seed)
    inputs = [(f"hostile/{name}", name, data) for name, data in hostile_cases().items()]
    outcomes = []
    kinds: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for label, name, data in inputs:
            outcomes.append((label, read_beside_good(Path(folder) / "h", name, data, limits)))
        for number in range(args.inputs):
            name, data = generated_input(rng)
            kinds[Path(name).suffix] += 1
            outcomes.append((f"generated #{number} ({name}, {len(data):,} bytes)",
                             read_beside_good(Path(folder) / "g", name, data, limits)))
        for number in range(args.targeted):
            case = targeted_input(rng)
            kinds[case.family] += 1
            targeted_limits = ReadLimits(**{"max_seconds_per_file": args.budget, **case.limits})
            outcomes.append((f"targeted #{number} ({case.family}: {case.name}, {len(case.data):,} bytes)",
                             read_beside_good(Path(folder) / "t", case.name, case.data, targeted_limits,
                                              good_first=case.good_first)))
    elapsed = time.perf_counter() - started
    failures = [(label, outcome) for label, outcome in outcomes if not outcome.handled]
    seconds = [outcome.seconds for _, outcome in outcomes]
    print(f"inputs tried: {len(outcomes)} ({len(inputs)} hostile cases + {args.inputs} generated + {args.targeted} "
          f"targeted, seed {args.seed}; by suffix or family: "
          f"{', '.join(f'{kind} {count}' for kind, count in sorted(kinds.items()))})")
    print(f"handled: {len(outcomes) - len(failures)} of {len(outcomes)}")
    print(f"time per input: median {statistics.median(seconds) * 1000:.1f} ms, "
          f"p99 {sorted(seconds)[int(0.99 * (len(seconds) - 1))] * 1000:.1f} ms, max {max(seconds):.2f} s; "
          f"total {elapsed:.1f} s (budget per file {args.budget:g} s)")
    for label, outcome in sorted(outcomes, key=lambda item: -item[1].seconds)[: args.show]:
        print(f"  slow: {outcome.seconds:.2f} s  {label}")
    for label, outcome in failures[:20]:
        print(f"FAILED {label}: {outcome.failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
