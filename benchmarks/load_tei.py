"""Many TEI clients at once against `python -m search serve` on loopback: errors, request latency, /health's
latency and the server's memory.

    python benchmarks/load_tei.py                          # 20 clients x 20 reranks, tiny cross-encoder
    python benchmarks/load_tei.py --model late-interaction # the offline fallback over the bundled e5
    python benchmarks/load_tei.py --clients 5 --requests 4 --passages 16
    python benchmarks/load_tei.py --mixed                  # /embed, /rerank, /v1/embeddings + slow clients

The server runs in a child process on 127.0.0.1 with models that need no download: by default a tiny
random-weight XLM-R cross-encoder built here (tests/tiny_models.py), or the late-interaction fallback; with
--mixed also the bundled MiniLM as the dense encoder. Each client is this project's `tei` backend client
(`search.backends.tei.TEIClient`) in its own thread, sending requests whose texts no other request uses, so
the score cache answers none of them and every pair is scored.

--mixed: 16 clients (--clients) each send --requests requests, cycling through POST /embed, POST /rerank and
POST /v1/embeddings, while --slow-clients (50) slowloris clients each hold a connection open sending one
header byte a second (reconnecting when the server cuts them off) for --slow-seconds (60), and a probe
asks GET /health every 100 ms throughout. It prints the errors (0 expected), /health's p50/p95/max (goal:
p95 < 50 ms) beside the same probe's figures with the server idle just before (what the machine itself
costs), how often the server cut a slow client off, the server's memory before and after, and the
machine's load average.

Everything is bounded: each request has a timeout and the whole run a deadline, after which unsent
requests count as errors; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loopback import free_port, percentile, process_rss_mb, stop  # noqa: E402 - after the path is set
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
HEALTH_EVERY_S = 0.1
SLOW_BYTE_EVERY_S = 1.0
IDLE_PROBE_S = 10.0
DENSE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # bundled with the project: no download


def start_server(model: str, port: int, batch: int, *, dense: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "search", "serve", "--reranker-model", model, "--device", "cpu",
               "--host", "127.0.0.1", "--port", str(port), "--max-client-batch-size", str(batch)]
    command += ["--dense-model", dense] if dense else ["--no-dense"]
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
        stop(child)
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


def health_latencies(url: str, seconds: float) -> list[float]:
    """Seconds each GET /health took, asked every HEALTH_EVERY_S for `seconds`."""
    import httpx

    latencies = []
    until = time.monotonic() + seconds
    with httpx.Client(timeout=10) as http:
        while time.monotonic() < until:
            sent = time.perf_counter()
            if http.get(url + "/health").status_code == 200:
                latencies.append(time.perf_counter() - sent)
            time.sleep(HEALTH_EVERY_S)
    return latencies


def run_mixed(args: argparse.Namespace) -> dict:
    """The mixed load (see the module's docstring): reports errors, /health latency, cut-offs and memory."""
    import httpx

    scratch = tempfile.TemporaryDirectory(prefix="load-tei-mixed-")
    model = args.model
    if model == "tiny":
        from tests.tiny_models import build_tiny_xlmr_cross_encoder

        model = str(build_tiny_xlmr_cross_encoder(Path(scratch.name) / "tiny", CORPUS + QUERIES))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = start_server(model, port, args.passages, dense=DENSE_MODEL)
    latencies: dict[str, list[float]] = {"/embed": [], "/rerank": [], "/v1/embeddings": []}
    health: list[float] = []
    errors: list[str] = []
    cut_offs = [0]
    lock = threading.Lock()
    try:
        wait_until_healthy(child, url)
        warm = TEIClient(url, timeout=REQUEST_TIMEOUT, token="")
        warm.post("/rerank", {"query": "warm-up", "texts": CORPUS[:2], "truncate": True})
        warm.post("/embed", {"inputs": CORPUS[:2]})
        memory_before = process_rss_mb(child.pid)
        idle = health_latencies(url, IDLE_PROBE_S)  # the baseline: the same probe with the server idle
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        deadline = started + args.deadline
        slow_until = started + args.slow_seconds
        done = threading.Event()

        def failed(message: str) -> None:
            with lock:
                errors.append(message)

        def client(number: int) -> None:
            tei = TEIClient(url, timeout=REQUEST_TIMEOUT, token="", retries=0)
            for request in range(args.requests):
                if time.monotonic() > deadline:
                    failed(f"client {number}: deadline passed before request {request}")
                    continue
                route = ("/embed", "/rerank", "/v1/embeddings")[(number + request) % 3]
                texts = [CORPUS[(number + request + i) % len(CORPUS)] + f" ({number}-{request}-{i})"
                         for i in range(args.passages)]
                body = {"/embed": {"inputs": texts, "truncate": True},
                        "/rerank": {"query": f"{QUERIES[request % len(QUERIES)]} [{number}-{request}]",
                                    "texts": texts, "raw_scores": True, "truncate": True},
                        "/v1/embeddings": {"input": texts, "model": DENSE_MODEL}}[route]
                sent = time.perf_counter()
                try:
                    answer = tei.post(route, body)
                    count = len(answer["data"]) if route == "/v1/embeddings" else len(answer)
                    if count != len(texts):
                        raise TEIError(f"{route} answered {count} items for {len(texts)} texts", "protocol")
                except TEIError as error:
                    failed(f"client {number}, request {request} ({route}): {error}")
                    continue
                with lock:
                    latencies[route].append(time.perf_counter() - sent)
            tei.close()

        def slow_client() -> None:
            while time.monotonic() < slow_until and not done.is_set():
                try:
                    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
                except OSError as error:
                    failed(f"a slow client could not connect: {error}")
                    time.sleep(SLOW_BYTE_EVERY_S)
                    continue
                with connection:
                    connection.sendall(b"POST /rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    connection.setblocking(False)
                    while time.monotonic() < slow_until and not done.is_set():
                        time.sleep(SLOW_BYTE_EVERY_S)
                        try:
                            closed = connection.recv(1) == b""
                        except BlockingIOError:
                            closed = False
                        except OSError:  # reset: the server closed it and a byte was sent after
                            closed = True
                        if not closed:
                            try:
                                connection.send(b"a")
                            except OSError:
                                closed = True
                        if closed:
                            with lock:
                                cut_offs[0] += 1
                            break

        def probe() -> None:
            with httpx.Client(timeout=10) as http:
                while not done.is_set() and time.monotonic() < deadline:
                    sent = time.perf_counter()
                    try:
                        status = http.get(url + "/health").status_code
                    except httpx.HTTPError as error:
                        failed(f"/health failed: {type(error).__name__}")
                        status = None
                    if status == 200:
                        with lock:
                            health.append(time.perf_counter() - sent)
                    elif status is not None:
                        failed(f"/health answered {status}")
                    time.sleep(HEALTH_EVERY_S)

        slow = [threading.Thread(target=slow_client, daemon=True) for _ in range(args.slow_clients)]
        busy = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
        watcher = threading.Thread(target=probe, daemon=True)
        for thread in (*slow, watcher, *busy):
            thread.start()
        for thread in (*busy, *slow):
            thread.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT)
        done.set()
        watcher.join(timeout=15)
        wall = time.monotonic() - started
        memory_after = process_rss_mb(child.pid)
        load_after = os.getloadavg()[0]
    finally:
        stop(child)
        child.stderr.close()
        scratch.cleanup()
    answered = sum(len(values) for values in latencies.values())

    def milliseconds(values: list[float], share: float) -> float | None:
        return round(percentile(values, share) * 1000, 1) if values else None

    return {
        "mode": "mixed", "clients": args.clients, "requests_per_client": args.requests,
        "texts_per_request": args.passages, "slow_clients": args.slow_clients, "slow_seconds": args.slow_seconds,
        "requests": args.clients * args.requests, "answered": answered, "errors": len(errors),
        "error_examples": errors[:5], "wall_s": round(wall, 1),
        "routes": {route: {"answered": len(values), "p50_ms": milliseconds(values, 0.5),
                           "p95_ms": milliseconds(values, 0.95)} for route, values in latencies.items()},
        "health_checks": len(health), "health_p50_ms": milliseconds(health, 0.5),
        "health_p95_ms": milliseconds(health, 0.95),
        "health_max_ms": round(max(health) * 1000, 1) if health else None,
        "idle_health_p50_ms": milliseconds(idle, 0.5), "idle_health_p95_ms": milliseconds(idle, 0.95),
        "load_average_before": round(load_before, 1), "load_average_after": round(load_after, 1),
        "slow_client_cut_offs": cut_offs[0],
        "server_rss_before_mb": round(memory_before, 1), "server_rss_after_mb": round(memory_after, 1),
    }


def print_mixed(report: dict) -> None:
    print(f"serve on 127.0.0.1, tiny cross-encoder + MiniLM: {report['clients']} clients x "
          f"{report['requests_per_client']} requests of {report['texts_per_request']} texts (/embed, /rerank, "
          f"/v1/embeddings in turn), with {report['slow_clients']} slow clients for {report['slow_seconds']:g} s")
    print(f"answered {report['answered']} of {report['requests']}, errors {report['errors']}")
    for example in report["error_examples"]:
        print(f"  error: {example}")
    for route, figures in report["routes"].items():
        print(f"  {route:<15} {figures['answered']:>4} answered, p50 {figures['p50_ms']} ms, "
              f"p95 {figures['p95_ms']} ms")
    print(f"/health under the load: {report['health_checks']} checks, p50 {report['health_p50_ms']} ms, p95 "
          f"{report['health_p95_ms']} ms (goal < 50), max {report['health_max_ms']} ms; the same probe with the "
          f"server idle just before: p50 {report['idle_health_p50_ms']} ms, p95 {report['idle_health_p95_ms']} ms")
    print(f"machine load average (1 min, {os.cpu_count()} CPUs): {report['load_average_before']} at the start, "
          f"{report['load_average_after']} at the end")
    print(f"slow clients cut off by the header deadline: {report['slow_client_cut_offs']} times")
    print(f"server memory (RSS): {report['server_rss_before_mb']} MB before, {report['server_rss_after_mb']} MB after"
          f" ({report['wall_s']} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="'tiny' (built here), 'late-interaction', or a local "
                                                        "cross-encoder folder (default tiny)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--requests", type=int, default=20, help="rerank requests per client (default 20)")
    parser.add_argument("--passages", type=int, default=8, help="passages per request (default 8)")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole run (default 300)")
    parser.add_argument("--mixed", action="store_true", help="the mixed load: /embed, /rerank and /v1/embeddings "
                                                             "with slow clients (default 16 clients)")
    parser.add_argument("--slow-clients", type=int, default=50, help="--mixed: slow clients (default 50)")
    parser.add_argument("--slow-seconds", type=float, default=60.0,
                        help="--mixed: how long the slow clients keep at it, at most 600 (default 60)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if args.mixed and "--clients" not in sys.argv:
        args.clients = 16
    for name in ("clients", "requests", "passages"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not 0 <= args.slow_clients <= 500 or not 0 < args.slow_seconds <= 600:
        parser.error("--slow-clients must be 0 to 500 and --slow-seconds more than 0 and at most 600")
    report = run_mixed(args) if args.mixed else run(args)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    elif args.mixed:
        print_mixed(report)
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
