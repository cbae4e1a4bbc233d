"""Time drawing the rank-flow chart and the agreement matrix (`ui.rankflow`) against drawing the result
columns (`ui.columns.render_column` for every stage), which each search draws already, on one synthetic
search: five stages (bm25, dense, hybrid, rerank, rerank-b), `--depth` hits each, 12 languages.

Runs are interleaved (`benchmarks/interleaved.py`); the table gives medians and the per-round ratio to the
columns (above 1: the chart is faster), and the chart's size in bytes.

    python benchmarks/bench_rankflow.py --k 50 --rounds 30
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.interleaved import interleaved  # noqa: E402
from search.types import Hit, Language, SearchResult, StageResult  # noqa: E402
from ui.columns import render_column  # noqa: E402
from ui.rankflow import render_agreement, render_rank_flow  # noqa: E402

LANGUAGES = [Language(code, code, 0.9) for code in "en de fr es ru ar he el hi th zh ja".split()]
STAGES = ("bm25", "dense", "hybrid", "rerank", "rerank-b")
TEXT = ("A passage of about six hundred characters, long enough to be cut into a snippet around the query's "
        "matches, as the cards show it: tea, monsoon, printing press, coral reef, bicycle, chess. ") * 3


def synthetic_result(depth: int, passages: int, seed: int) -> SearchResult:
    generator = random.Random(seed)
    ids = [f"doc{i:04d}#0" for i in range(passages)]
    orders = {name: generator.sample(ids, depth) for name in STAGES[:3]}
    for name in STAGES[3:]:
        orders[name] = generator.sample(orders["hybrid"], depth)
    stages = {}
    for name, order in orders.items():
        hits = tuple(Hit(pid, pid.split("#")[0], rank, float(depth - rank), LANGUAGES[int(pid[3:7]) % 12], TEXT,
                         f"Title of {pid}", ranks={other: orders[other].index(pid) + 1 if pid in orders[other] else None
                                                   for other in orders if other != name},
                         sigmoid=0.5 if name.startswith("rerank") else None)
                     for rank, pid in enumerate(order, start=1))
        stages[name] = StageResult(name, hits, 0.01, f"{name}-model")  # type: ignore[arg-type]
    return SearchResult("query", LANGUAGES[0], stages, "hybrid", depth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--depth", type=int, default=80, help="hits per stage (the rerank depth)")
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    result = synthetic_result(args.depth, args.passages, seed=7)
    stages = list(result.stages.values())
    runs = {
        "columns (5 x render_column)": lambda: [render_column(stage, result, k=args.k) for stage in stages],
        "chart (render_rank_flow)": lambda: render_rank_flow(result, k=args.k),
        "matrix (render_agreement)": lambda: render_agreement(result, args.k),
    }
    timings = interleaved(runs, rounds=args.rounds, baseline="columns (5 x render_column)", log=lambda _: None)
    chart = render_rank_flow(result, k=args.k)
    lines = chart.count('class="rf-line')
    print(f"k={args.k}, {len(STAGES)} stages of {args.depth} hits, {args.rounds} interleaved rounds; "
          f"the chart draws {lines} lines, {len(chart.encode()):,} bytes")
    print(f"{'run':32} {'median ms':>10} {'speed vs columns, median [min-max]':>36}")
    for name, timing in timings.items():
        print(f"{name:32} {timing.median_seconds * 1000:10.2f} {timing.ratio_text():>36}")


if __name__ == "__main__":
    main()
