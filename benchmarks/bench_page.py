"""How long a user waits for the columns, measured in the browser: from Search to the BM25, dense and hybrid
columns drawn (the slowest of the three), and to the reranked column, over fresh queries on the sample
corpus, for this tree and a baseline commit side by side in one run (interleaved query by query).

    python benchmarks/bench_page.py                      # this tree against the session's starting commit
    python benchmarks/bench_page.py --baseline 5c354be --queries 15 --settle 1

Each app runs in its own process with the offline models (the bundled e5 for dense, late interaction as the
reranker) on 127.0.0.1; Debian's chromium drives both. The time is taken in the page, from the click on Search:
a MutationObserver on each column notes when a new finished column replaces the old one. Fresh queries only, so
no score cache or repeated embedding answers. Needs chromium (apt-get install -y chromium) and the test extra.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "When did the Luna 2 probe reach the Moon?", "Wie viele Bienen leben in einem Volk?", "茶是什么时候传入日本的？",
    "चंद्रयान-3 चंद्रमा पर कब उतरा?", "Какой самый высокий вулкан в Европе?", "ما هي الشعاب المرجانية؟",
    "why do some reefs turn white", "How far is the Moon from the Earth on average?",
    "Quand le thé est-il arrivé en Europe?",
    "¿Cuántas abejas viven en una colmena?", "when was the printing press invented", "チェスの起源はどこですか？",
    "Who invented the bicycle?", "Wo entspringt der Rhein?", "ภูเขาไฟที่สูงที่สุดในยุโรปคืออะไร",
]
# A column is drawn when its section is finished (done, or empty) and differs from the previous query's.
# Only the section is compared: Gradio's loading overlay comes and goes beside it in the same column as soon
# as Search is pressed, and the page's own note of the time waited (span.stage-waited, data-waited) is left out.
WATCH = """
(names) => {
  window.__drawn = {};
  window.__started = null;  // the click on Search (capture phase: before the app's own handlers)
  if (!window.__benchClicks) {
    window.__benchClicks = true;
    document.addEventListener('click', (event) => {
      if (event.target.closest && event.target.closest('#search-button')) window.__started = performance.now();
    }, true);
  }
  const signature = (section) => {
    if (!section) return null;
    const copy = section.cloneNode(true);
    copy.removeAttribute('data-waited');
    copy.querySelectorAll('.stage-waited').forEach((slot) => slot.remove());
    return copy.outerHTML;
  };
  for (const name of names) {
    const column = document.getElementById('column-' + name);
    const before = signature(column.querySelector('section.stage-column'));
    const observer = new MutationObserver(() => {
      // done, or empty: a stage that found nothing for the query (BM25 with no word of it in the corpus)
      const section = column.querySelector('section.stage-column:is([data-state="done"], [data-state="empty"])');
      if (section && window.__started !== null && !(name in window.__drawn) && signature(section) !== before) {
        window.__drawn[name] = (performance.now() - window.__started) / 1000;
        observer.disconnect();
      }
    });
    observer.observe(column, {childList: true, subtree: true, attributes: true, characterData: true});
  }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(tree: Path, cache: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "SEARCH_DENSE_MODEL": "multilingual-e5-small-q4", "SEARCH_RERANKER_MODEL": "late-interaction",
           "SEARCH_CACHE_DIR": str(cache), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(tree)}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the app in {tree} did not start within 300 s")


def open_built(browser, url: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#build-button", timeout=120_000)
    page.click("#build-button")  # the sample corpus
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=600_000)
    return page


def search(page, query: str, settle: float = 0.0) -> dict[str, float]:
    """Search `query` once the page has been still for `settle` seconds (what followed the last search, the
    chart redrawn after the rerank and the estimate, is done by then, as when a user reads before asking
    again); returns the seconds from the click to each column drawn."""
    page.wait_for_timeout(settle * 1000)
    page.evaluate(WATCH, ["bm25", "dense", "hybrid", "rerank"])
    page.fill("#query textarea", query)
    page.click("#search-button")
    try:
        page.wait_for_function("() => ['bm25', 'dense', 'hybrid', 'rerank'].every(n => n in window.__drawn)",
                               timeout=120_000)
    except Exception:
        states = page.eval_on_selector_all("section.stage-column",
                                           "s => s.map(x => x.dataset.stage + ':' + x.dataset.state)")
        raise RuntimeError(f"{query!r}: drawn {page.evaluate('window.__drawn')}, columns {states}") from None
    return page.evaluate("window.__drawn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="5c354be", help="the commit to compare with (default: 5c354be)")
    parser.add_argument("--queries", type=int, default=12, help="fresh queries per app (at most 15)")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after a search is drawn before the next one (default 0)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        base_tree = Path(scratch) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
        apps = {}
        try:
            for name, tree in (("this tree", ROOT), (f"baseline {args.baseline}", base_tree)):
                apps[name] = start_app(tree, Path(scratch) / f"cache-{len(apps)}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
                pages = {name: open_built(browser, url) for name, (_, url) in apps.items()}
                for page in pages.values():
                    search(page, "warm up: tea")  # the first search loads what the first one needs
                times: dict[str, list[dict[str, float]]] = {name: [] for name in pages}
                load_before = os.getloadavg()[0]
                for turn, query in enumerate(QUERIES[: args.queries]):
                    order = list(pages) if turn % 2 == 0 else list(pages)[::-1]  # each app goes first in turn
                    for name in order:  # interleaved, query by query
                        times[name].append(search(pages[name], query, args.settle))
                browser.close()
        finally:
            for process, _ in apps.values():
                process.terminate()
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, capture_output=True)
    load_after = os.getloadavg()[0]
    print(f"{args.queries} fresh queries on the polyglot-facts sample, 1600x1000, {args.settle:g} s between searches, "
          f"load average {load_before:.1f} "
          f"before, {load_after:.1f} after, on {os.cpu_count()} CPUs; seconds from the click on Search to the "
          "column drawn (median [min-max])")
    print(f"{'app':<22} {'first three columns':>28} {'reranked column':>28}   BM25, dense, hybrid (medians)")
    medians = {}
    for name, runs in times.items():
        first = [max(run["bm25"], run["dense"], run["hybrid"]) for run in runs]
        rerank = [run["rerank"] for run in runs]
        medians[name] = statistics.median(first), statistics.median(rerank)
        each = ", ".join(f"{statistics.median([run[stage] for run in runs]):.3f}"
                         for stage in ("bm25", "dense", "hybrid"))
        print(f"{name:<22} {_spread(first):>28} {_spread(rerank):>28}   {each}")
    (this_first, this_rerank), (base_first, base_rerank) = medians.values()
    print(f"first three columns: {base_first / this_first:.2f}x faster than the baseline (median); "
          f"reranked column: {base_rerank / this_rerank:.2f}x")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


if __name__ == "__main__":
    main()
