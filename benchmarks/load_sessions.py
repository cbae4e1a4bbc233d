"""Many browser-like sessions at once against the app on loopback: errors, cross-session leaks, latency
and server memory.

    python benchmarks/load_sessions.py                     # 20 sessions x 10 searches, offline models
    python benchmarks/load_sessions.py --sessions 5 --searches 4 --rerank-depth 0

The app runs in a child process on 127.0.0.1 with the offline models (so nothing is downloaded). Every
session uploads its own small corpus whose words no other session uses, builds it through `/build_index`,
then runs its searches through `/search`. A leak is any hit, in any stage, from another session's corpus;
it must be 0. Half of each session's searches are first-stage only (rerank depth 0) and half rerank, so the
figures show whether first-stage API calls wait behind reranks. Everything is bounded: each call has a
timeout and the whole run a deadline, after which unfinished sessions count as errors.
"""

from __future__ import annotations

import argparse
import os
import random
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

MODELS = ("sentence-transformers/all-MiniLM-L6-v2", "late-interaction")
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zu", "pi", "do", "fe")
CALL_TIMEOUT = 300.0


def session_words(session: int, count: int, rng: random.Random) -> list[str]:
    """Invented words that only this session uses: each carries the session's own tag."""
    tag = f"s{session}q"
    return [tag + "".join(rng.choice(SYLLABLES) for _ in range(3)) for _ in range(count)]


def write_corpus(folder: Path, session: int, documents: int, rng: random.Random) -> tuple[Path, list[str]]:
    words = session_words(session, 40, rng)
    lines = [f"{' '.join(rng.sample(words, 12))}." for _ in range(documents)]
    path = folder / f"session{session}.txt"
    path.write_text("\n\n".join(lines), encoding="utf-8")
    return path, words






def start_server(port: int, cache: Path) -> subprocess.Popen:
    env = dict(os.environ, SEARCH_DENSE_MODEL=MODELS[0], SEARCH_RERANKER_MODEL=MODELS[1],
               SEARCH_CACHE_DIR=str(cache), GRADIO_ANALYTICS_ENABLED="False")
    code = ("import app; app.build_demo().launch(server_name='127.0.0.1', "
            f"server_port={port}, quiet=True, **app.launch_kwargs())")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the app exited with code {server.returncode} before answering")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the app did not answer at {url} within {timeout:.0f} s")


class Tally:
    """What every session saw, gathered under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.leaks = 0
        self.hits_checked = 0
        self.latency: dict[str, list[float]] = {"build": [], "first stages": [], "with rerank": []}

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


def run_session(url: str, session: int, folder: Path, args: argparse.Namespace, tally: Tally,
                deadline: float) -> None:
    from gradio_client import Client, handle_file

    rng = random.Random(session)
    try:
        client = Client(url, verbose=False)
        path, words = write_corpus(folder, session, args.documents, rng)
        started = time.perf_counter()
        client.predict([handle_file(str(path))], "(none: use my files)", 200, 40, *MODELS, api_name="/build_index")
        tally.add("build", time.perf_counter() - started)
        own_tag = f"s{session}q"
        for search in range(args.searches):
            if time.monotonic() > deadline:
                tally.error(f"session {session}: deadline reached after {search} searches")
                return
            depth = 0 if search % 2 == 0 else args.rerank_depth
            query = " ".join(rng.sample(words, 3))
            started = time.perf_counter()
            result = client.predict(query, 10, depth, "hybrid", api_name="/search")
            tally.add("first stages" if depth == 0 else "with rerank", time.perf_counter() - started)
            hits = [hit for stage in result["stages"].values() for hit in stage["hits"]]
            foreign = [hit for hit in hits if own_tag not in hit["text"]]
            with tally.lock:
                tally.hits_checked += len(hits)
                tally.leaks += len(foreign)
    except Exception as error:  # noqa: BLE001 - a load test counts failures, it does not stop on them
        tally.error(f"session {session}: {type(error).__name__}: {str(error)[:200]}")




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--searches", type=int, default=10, help="searches per session (half rerank)")
    parser.add_argument("--documents", type=int, default=12, help="documents in each session's corpus")
    parser.add_argument("--rerank-depth", type=int, default=10, help="rerank depth of the reranking searches")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds for the whole run")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 64 or not 1 <= args.searches <= 100:
        parser.error("use 1-64 sessions and 1-100 searches per session")

    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        folder = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        server = start_server(port, folder / "cache")
        try:
            wait_until_up(url, server)
            memory_before = process_rss_mb(server.pid)
            tally = Tally()
            deadline = time.monotonic() + args.deadline
            threads = [threading.Thread(target=run_session, args=(url, i, folder, args, tally, deadline), daemon=True)
                       for i in range(args.sessions)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()) + CALL_TIMEOUT)
            wall = time.perf_counter() - started
            unfinished = sum(thread.is_alive() for thread in threads)
            memory_after = process_rss_mb(server.pid)
        finally:
            stop(server)

    print(f"{args.sessions} sessions x {args.searches} searches (rerank depth {args.rerank_depth} on half), "
          f"{wall:.1f} s wall, CPU: {os.cpu_count()} cores")
    print(f"errors: {len(tally.errors) + unfinished}   cross-session leaks: {tally.leaks} in "
          f"{tally.hits_checked} hits checked")
    print(f"{'call':<14}{'count':>7}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for kind, values in tally.latency.items():
        if values:
            print(f"{kind:<14}{len(values):>7}{statistics.median(values):>9.2f}{percentile(values, 0.95):>9.2f}"
                  f"{max(values):>9.2f}")
    print(f"server memory: {memory_before:.0f} MB before, {memory_after:.0f} MB after")
    for message in tally.errors[:10]:
        print("  " + message)
    return 1 if tally.errors or unfinished or tally.leaks else 0


if __name__ == "__main__":
    raise SystemExit(main())
