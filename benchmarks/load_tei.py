"""Many TEI clients at once against `python -m search serve` on loopback: errors, request latency and the
server's memory.

    python benchmarks/load_tei.py                          # 20 clients x 20 reranks, tiny cross-encoder
    python benchmarks/load_tei.py --model late-interaction # the offline fallback over the bundled MiniLM
    python benchmarks/load_tei.py --clients 5 --requests 4 --passages 16

The server runs in a child process on 127.0.0.1 with a model that needs no download: by default a tiny
random-weight XLM-R cross-encoder built here (tests/tiny_models.py), or the late-interaction fallback. Each
client is this project's `tei` backend client (`search.backends.tei.TEIClient`) in its own thread, sending
`POST /rerank` requests whose queries no other request uses, so the score cache answers none of them and
every pair is scored. Errors must be 0. Everything is bounded: each request has a timeout and the whole run
a deadline, after which unsent requests count as errors; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loopback import free_port, percentile, process_rss_mb  # noqa: E402 - after the path is set
from search.backends.tei import TEIClient, TEIError  # noqa: E402 - after the path is set

CORPUS = [
    "The Spree flows through the centre of Berlin.", "Bananas are rich in potassium.",
    "Green tea is grown on terraced hillsides and picked by hand in spring.",
    "A volcano erupts when magma rises through cracks in the crust of the Earth.",
    "Honeybees dance to tell their sisters where the best flowers are blooming.",
    "Rivers carry sand and gravel from the mountains down to the sea.",
    "Bread rises when yeast turns sugar into gas inside the warm dough.",
    "Grüner Tee wird im Frühling an steilen Hängen von Hand gepflückt.",
]
QUERIES = ["Which river flows through Berlin?", "where does tea grow", "why does bread rise", "volcano magma"]
REQUEST_TIMEOUT = 60.0
START_TIMEOUT = 180.0








def start_server(model: str, port: int, batch: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "search", "serve", "--reranker-model", model, "--no-dense", "--device", "cpu",
               "--host", "127.0.0.1", "--port", str(port), "--max-client-batch-size", str(batch)]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until_healthy(child: subprocess.Popen, url: str) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the server exited: {child.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer /health within {START_TIMEOUT:.0f} s")


def run(args: argparse.Namespace) -> dict:
    model = args.model
    scratch = tempfile.TemporaryDirectory(prefix="load-tei-")
    if model == "tiny":
        from tests.tiny_models import build_tiny_xlmr_cross_encoder

        model = str(build_tiny_xlmr_cross_encoder(Path(scratch.name) / "tiny", CORPUS + QUERIES))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = start_server(model, port, args.passages)
    try:
        wait_until_healthy(child, url)
        warm = TEIClient(url, timeout=REQUEST_TIMEOUT, token="")
        info = warm.get("/info")
        warm.post("/rerank", {"query": "warm-up", "texts": CORPUS[:2], "raw_scores": True, "truncate": True})
        memory_before = process_rss_mb(child.pid)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.deadline
        go = threading.Barrier(args.clients)

        def client(number: int) -> None:
            tei = TEIClient(url, timeout=REQUEST_TIMEOUT, token="")
            go.wait()
            for request in range(args.requests):
                if time.monotonic() > deadline:
                    with lock:
                        errors.append(f"client {number}: deadline passed before request {request}")
                    continue
                texts = [CORPUS[(number + request + i) % len(CORPUS)] + f" ({i})" for i in range(args.passages)]
                body = {"query": f"{QUERIES[request % len(QUERIES)]} [{number}-{request}]", "texts": texts,
                        "raw_scores": True, "truncate": True}
                started = time.perf_counter()
                try:
                    ranks = tei.post("/rerank", body)
                    if sorted(rank["index"] for rank in ranks) != list(range(len(texts))):
                        raise TEIError("not one rank per text", "protocol")
                except TEIError as error:
                    with lock:
                        errors.append(f"client {number}, request {request}: {error}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - started)
            tei.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.deadline + REQUEST_TIMEOUT + 10)
        wall = time.perf_counter() - started
        memory_after = process_rss_mb(child.pid)
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
        child.stderr.close()
        scratch.cleanup()
    sent = args.clients * args.requests
    return {
        "model": info["model_id"] if args.model != "tiny" else "tiny XLM-R cross-encoder (random weights)",
        "clients": args.clients, "requests_per_client": args.requests, "passages_per_request": args.passages,
        "requests": sent, "answered": len(latencies), "errors": len(errors), "error_examples": errors[:5],
        "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 1) if wall else None,
        "pairs_per_s": round(len(latencies) * args.passages / wall, 1) if wall else None,
        "latency_p50_ms": round(percentile(latencies, 0.5) * 1000, 1) if latencies else None,
        "latency_p95_ms": round(percentile(latencies, 0.95) * 1000, 1) if latencies else None,
        "latency_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "latency_mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "server_rss_before_mb": round(memory_before, 1), "server_rss_after_mb": round(memory_after, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="'tiny' (built here), 'late-interaction', or a local "
                                                        "cross-encoder folder (default tiny)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--requests", type=int, default=20, help="rerank requests per client (default 20)")
    parser.add_argument("--passages", type=int, default=8, help="passages per request (default 8)")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole run (default 300)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    for name in ("clients", "requests", "passages"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    report = run(args)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(f"serve on 127.0.0.1 with {report['model']}: {report['clients']} clients x "
              f"{report['requests_per_client']} rerank requests of {report['passages_per_request']} passages")
        print(f"answered {report['answered']} of {report['requests']}, errors {report['errors']}")
        for example in report["error_examples"]:
            print(f"  error: {example}")
        print(f"latency p50 {report['latency_p50_ms']} ms, p95 {report['latency_p95_ms']} ms, "
              f"max {report['latency_max_ms']} ms; {report['requests_per_s']} requests/s, "
              f"{report['pairs_per_s']} pairs/s over {report['wall_s']} s")
        print(f"server memory (RSS): {report['server_rss_before_mb']} MB before, "
              f"{report['server_rss_after_mb']} MB after")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
