"""What two hostile uploads of issue 21 §3 cost to read: time, CPU and peak memory, baseline against this checkout.

- ``zip-listing``: one zip holding `--archives` zips of `--entries` empty entries each (the issue: 20 x 470,000,
  33 MB, which took 102 s of CPU listing entries and read nothing);
- ``row-bomb``: one zip of four CSVs of `--row-mb` MB each, one character per row (the issue: 4 x 49 MB made 24.1
  million documents, 8 GB and a MemoryError in splitting), read and then split with max_passages=20,000 as the
  app's build does.

Each read runs in a fresh child process (`search` from this checkout or from the baseline revision's ``search/``,
extracted to a temporary folder), capped at `--memory-gb` of address space so a baseline that runs away fails
with MemoryError instead of taking the machine. Runs are interleaved (baseline, this checkout, baseline, ...)
and the median of `--repeat` runs is printed side by side, with the ratio.

    python benchmarks/bench_read_costs.py --baseline main
    python benchmarks/bench_read_costs.py --baseline main --entries 100000 --row-mb 5 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_PASSAGES = 20_000

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (int(float(sys.argv[3]) * 2**30),) * 2)
from pathlib import Path
from search.reading import read_paths
from search.passages import split_documents
started, cpu = time.perf_counter(), time.process_time()
outcome = {}
try:
    result = read_paths([Path(sys.argv[2])], names=[Path(sys.argv[2]).name])
    outcome["documents"] = len(result.documents)
    outcome["first problem"] = str(result.problems[-1])[:160] if result.problems else ""
    try:
        try:
            passages = split_documents(result.documents, max_passages=int(sys.argv[4]))
        except TypeError:  # a baseline without max_passages: split everything, then count
            passages = split_documents(result.documents)
            if len(passages) > int(sys.argv[4]):
                raise ValueError(f"{len(passages):,} passages")
        outcome["split"] = f"{len(passages):,} passages"
    except ValueError as error:
        outcome["split"] = f"refused: {str(error)[:80]}"
except MemoryError:
    outcome["error"] = "MemoryError"
outcome["seconds"] = time.perf_counter() - started
outcome["cpu"] = time.process_time() - cpu
outcome["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(outcome))
"""


def zip_listing_case(folder: Path, archives: int, entries: int) -> Path:
    inner = folder / "inner.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_STORED) as archive:
        for number in range(entries):
            archive.writestr(zipfile.ZipInfo(f"e{number}"), b"")
    outer = folder / "nested-entries.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(archives):
            archive.write(inner, f"inner{number}.zip")
    inner.unlink()
    return outer


def row_bomb_case(folder: Path, megabytes: float) -> Path:
    # A random letter per row compresses about 8:1, under max_compression_ratio as the 12:1 was.
    rows = int(megabytes * 1_000_000 / 2)
    letters = random.Random(21).choices("abcdefghijklmnop", k=rows)
    csv = ("text\n" + "\n".join(letters) + "\n").encode()
    bomb = folder / "row-bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(4):
            archive.writestr(f"rows{number}.csv", csv)
    return bomb


def run(code: Path, case: Path, memory_gb: float) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(code), str(case), str(memory_gb), str(MAX_PASSAGES)],
                          capture_output=True, text=True, check=False, cwd=code)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}", "seconds": float("nan"),
                "cpu": float("nan"), "peak_mb": float("nan")}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--archives", type=int, default=20, help="nested zips in the zip-listing case (default 20)")
    parser.add_argument("--entries", type=int, default=470_000, help="entries per nested zip (default 470,000)")
    parser.add_argument("--row-mb", type=float, default=2.0, help="MB per CSV of the row bomb (default 2; the "
                        "issue's 49 would take the baseline past 8 GB)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each code per case (default 2)")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address space cap per run (default 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        baseline = Path(folder, "baseline")
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "search"], capture_output=True,
                                 check=True)
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        started = time.perf_counter()
        cases = {"zip-listing": zip_listing_case(Path(folder), args.archives, args.entries),
                 "row-bomb": row_bomb_case(Path(folder), args.row_mb)}
        print(f"cases built in {time.perf_counter() - started:.1f} s: " + ", ".join(
            f"{name} {path.stat().st_size / 1e6:.1f} MB" for name, path in cases.items()))
        codes = {args.baseline: baseline, "this checkout": ROOT}
        for name, case in cases.items():
            results: dict[str, list[dict]] = {label: [] for label in codes}
            for _ in range(args.repeat):
                for label, code in codes.items():
                    results[label].append(run(code, case, args.memory_gb))
            _report(name, results)
    return 0


def _report(name: str, results: dict[str, list[dict]]) -> None:
    print(f"\n{name}")
    medians = {}
    for label, runs in results.items():
        medians[label] = {key: statistics.median(run[key] for run in runs) for key in ("seconds", "cpu", "peak_mb")}
        last = runs[-1]
        what = last.get("error") or (f"{last['documents']:,} documents; split: {last['split']}; "
                                     f"problem: {last['first problem']}")
        print(f"  {label:>14}: median {medians[label]['seconds']:.2f} s wall, {medians[label]['cpu']:.2f} s CPU, "
              f"peak {medians[label]['peak_mb']:,.0f} MB ({len(runs)} runs) | {what}")
    baseline, current = list(medians.values())
    if current["seconds"] > 0:
        print(f"  ratio baseline/this checkout: {baseline['seconds'] / current['seconds']:.1f}x wall, "
              f"{baseline['peak_mb'] / current['peak_mb']:.1f}x peak memory")


if __name__ == "__main__":
    raise SystemExit(main())
