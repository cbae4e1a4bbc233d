"""Does the Evaluate tab's estimate match the run? In the browser, on the sample corpus: build it, load the
bundled judgments (44 queries), read "Estimated run time: about …", press Run evaluation and time it until
the metrics table is drawn; for this tree and a baseline commit, one after the other in one run.

    python benchmarks/bench_eval_estimate.py                       # this tree against the session's start
    python benchmarks/bench_eval_estimate.py --baseline 5c354be --rounds 2

Each app runs in its own process with the offline models (the bundled e5 for dense, late interaction as the
reranker) on 127.0.0.1, driven by Debian's chromium; each round is a new session of the same app on a new
copy of the sample (so the run starts from what a user's first evaluation starts from, except that a second
round finds the models loaded and pairs the first round scored in the process's score cache, as a user's
second run would). The app's own figure is read from the page; the actual time runs from the click to the
table. Needs chromium (apt-get install -y chromium) and the test extra.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_page import start_app  # noqa: E402

UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


def estimate_seconds(text: str) -> float:
    """The seconds of "Estimated run time: about 2.6 min for 44 queries …" (or "about 25 s", "under a second")."""
    if "under a second" in text.split("for")[0]:
        return 0.5
    found = re.search(r"Estimated run time: about ([\d.,]+)\s*(ms|s|min|h)\b", text)
    if not found:
        raise ValueError(f"no estimate in {text!r}")
    return float(found.group(1).replace(",", "")) * UNITS[found.group(2)]


def one_round(browser, url: str) -> tuple[str, float, float]:
    """A new session: build the sample, load the bundled judgments, run; returns (the estimate's text, its
    seconds, the seconds from Run evaluation to the metrics table)."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#build-button", timeout=120_000)
    page.click("#build-button")  # the sample corpus
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=600_000)
    page.get_by_role("tab", name="Evaluate").click()
    page.click("#bundled-judgments")
    expect(page.locator("#judgments-summary")).to_contain_text("Estimated run time", timeout=300_000)
    text = page.inner_text("#judgments-summary")
    text = next(line for line in text.splitlines() if "Estimated run time" in line)
    page.click("#run-eval")
    started = time.perf_counter()
    expect(page.locator("#metrics-table")).to_contain_text("Reranked", timeout=1_800_000)
    actual = time.perf_counter() - started
    page.close()
    return text, estimate_seconds(text), actual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="5c354be", help="the commit to compare with (default: 5c354be)")
    parser.add_argument("--rounds", type=int, default=1, help="sessions per app, one after the other (at most 3)")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 3))
    from playwright.sync_api import sync_playwright

    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        base_tree = Path(scratch) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
                for name, tree in (("this tree", ROOT), (f"baseline {args.baseline}", base_tree)):
                    process, url = start_app(tree, Path(scratch) / f"cache-{len(rows)}")
                    try:  # one app at a time: an evaluation takes both CPUs
                        for round_number in range(1, rounds + 1):
                            rows.append((name, round_number, *one_round(browser, url)))
                    finally:
                        process.terminate()
                        process.wait(timeout=60)
                browser.close()
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, capture_output=True)
    load_after = os.getloadavg()[0]
    print(f"Evaluate tab on the polyglot-facts sample (44 queries, BM25, dense, hybrid, reranked at depth 20), "
          f"load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} CPUs")
    print(f"{'app':<18} {'round':>5} {'estimate s':>10} {'actual s':>9} {'estimate/actual':>15}  the page said")
    for name, round_number, text, estimate, actual in rows:
        print(f"{name:<18} {round_number:>5} {estimate:>10.1f} {actual:>9.1f} {estimate / actual:>15.2f}  {text}")


if __name__ == "__main__":
    main()
