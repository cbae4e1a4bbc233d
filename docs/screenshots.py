"""Take the README's pictures of the app as it is (docs/*.png): not a test.

The app is served in this process on a free port of 127.0.0.1 with the offline models, so nothing is
downloaded: the bundled multilingual e5 for dense retrieval, reranker A the late-interaction reranker over it.
Debian's chromium (headless, through Playwright) builds the polyglot-facts sample in a fresh session for each
picture and searches it, then the picture is taken of what is on screen:

- screenshot.png: 1600x1000 right after Search on an English question over the ten-language sample: the query
  box, the rank-flow chart and the top of the columns, as a user sees them without scrolling;
- compare.png: reranker B (late interaction over the English-centric MiniLM) beside A (over e5), five columns
  and a chart with five axes, on a Chinese question;
- explain.png: the Explain panel for reranker A's first passage, each sentence shaded by what leaving it out
  costs;
- narrow.png: a 420-pixel-wide window at k=3: the controls, the chart and the columns stacked (from the controls
  to the first card of the second column).

The pictures are reduced to a 256-colour palette (Pillow) to keep each a few hundred KB.
Needs chromium (`apt-get install -y chromium`), Playwright and the fonts the README names (fonts-noto-cjk).

    python docs/screenshots.py                        # all of them, into docs/
    python docs/screenshots.py --only compare,narrow --out-dir /tmp/shots
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOON = "How far is the Moon from the Earth on average?"
TEA = "茶是什么时候传入日本的？"  # "when did tea reach Japan?"
WIDE = {"width": 1600, "height": 1000}
NARROW = {"width": 420, "height": 900}
BUILD_SECONDS = 600  # the first build may export and quantise the bundled e5 (about a minute, more under load)
RERANK_SECONDS = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--only", default=",".join(SHOTS), help=f"a comma-separated subset of {', '.join(SHOTS)}")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--colors", type=int, default=256, help="palette size (0 keeps full colour)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SHOTS))
    if unknown:
        parser.error(f"unknown picture(s) {', '.join(unknown)}; choose from {', '.join(SHOTS)}")
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    from search.models import FALLBACK_DENSE_ID

    os.environ.update({"SEARCH_DENSE_MODEL": FALLBACK_DENSE_ID, "SEARCH_RERANKER_MODEL": "late-interaction",
                       "SEARCH_CACHE_DIR": tempfile.mkdtemp(prefix="screenshots-")})
    import app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = app.build_demo()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_kwargs())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            for name in chosen:
                out = args.out_dir / f"{name}.png"
                SHOTS[name](browser, f"http://127.0.0.1:{port}/", out)
                size = shrink(out, args.colors)
                print(f"saved {out} ({size / 1000:.0f} kB)")
            browser.close()
    finally:
        demo.close()
    return 0


def open_app(browser, url: str, viewport: dict[str, int], compare_with: str | None = None):
    """A new session at `viewport` with the sample corpus built (and reranker B chosen, if given), the
    model warm-up finished."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=viewport, device_scale_factor=1)
    page.goto(url)
    page.wait_for_selector("#build-button")
    if compare_with:
        page.get_by_text("Passages and models").click()
        page.click("#compare-model input")  # a model's option says where it loads from: "… (bundled, offline)"
        page.get_by_role("option", name=re.compile(rf"^{re.escape(compare_with)}( \(.*\))?$")).click()
        expect(page.locator("#compare-model input")).to_have_value(re.compile(rf"^{re.escape(compare_with)}"))
    page.click("#build-button")
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=BUILD_SECONDS * 1000)
    page.wait_for_selector('#model-status .model-status[data-state="ready"]', timeout=BUILD_SECONDS * 1000)
    return page


def search(page, query: str, stages: tuple[str, ...] = ("rerank",)) -> None:
    """Search `query` and wait for every column, the chart and the given reranked columns to be drawn."""
    page.fill("#query textarea", query)
    page.click("#search-button")
    for stage in ("bm25", "dense", "hybrid", *stages):
        page.wait_for_selector(f'#column-{stage} section[data-state="done"]', timeout=RERANK_SECONDS * 1000)
    page.wait_for_selector("#rank-flow svg.rank-flow-chart", timeout=60_000)
    page.mouse.move(0, 0)  # no hover state in the picture
    page.wait_for_timeout(500)  # the last column's layout settles


def shoot_screenshot(browser, url: str, out: Path) -> None:
    page = open_app(browser, url, WIDE)
    search(page, MOON)
    page.screenshot(path=str(out))  # the viewport: what the user sees after Search, unscrolled
    page.close()


def shoot_compare(browser, url: str, out: Path) -> None:
    page = open_app(browser, url, WIDE, compare_with="late-interaction-minilm")
    search(page, TEA, stages=("rerank", "rerank-b"))
    page.screenshot(path=str(out))
    page.close()


def shoot_explain(browser, url: str, out: Path) -> None:
    page = open_app(browser, url, WIDE)
    search(page, MOON)
    page.locator("#column-rerank li.hit").first.locator("button.explain-btn").click()
    page.wait_for_selector("#explain-cost .explain-cost", timeout=60_000)
    page.click("#explain-button")
    page.wait_for_selector("#explain-result .explain-passage .explain-part", timeout=RERANK_SECONDS * 1000)
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    page.locator("#explain-panel").screenshot(path=str(out))
    page.close()


def shoot_narrow(browser, url: str, out: Path) -> None:
    from playwright.sync_api import expect

    page = open_app(browser, url, NARROW)
    search(page, TEA)
    # Three results per column, as one might pick on a phone, so the picture reaches the stacked columns.
    page.fill("#k input[type=number]", "3")
    page.press("#k input[type=number]", "Enter")
    expect(page.locator("#column-dense li.hit")).to_have_count(3, timeout=60_000)
    page.wait_for_selector('#column-rerank section[data-state="done"]', timeout=RERANK_SECONDS * 1000)
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)
    scrolled = page.evaluate("window.scrollY")  # boxes are in the viewport, a full-page clip in the page
    top = page.locator("#search-controls").first.bounding_box()["y"] + scrolled
    bottom = page.locator("#column-dense li.hit").first.bounding_box()  # BM25's column, then Dense's under it
    bottom = bottom["y"] + scrolled + bottom["height"] + 8
    page.screenshot(path=str(out), full_page=True,
                    clip={"x": 0, "y": top, "width": NARROW["width"], "height": bottom - top})
    page.close()


SHOTS: dict[str, Callable] = {"screenshot": shoot_screenshot, "compare": shoot_compare, "explain": shoot_explain,
                              "narrow": shoot_narrow}


def shrink(path: Path, colors: int) -> int:
    """Reduce `path` to a `colors`-colour palette PNG (Pillow); return its size in bytes."""
    if colors:
        from PIL import Image

        with Image.open(path) as picture:
            reduced = picture.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                                      dither=Image.Dither.NONE)
        reduced.save(path, optimize=True)
    return path.stat().st_size


if __name__ == "__main__":
    raise SystemExit(main())
