"""Take the README's screenshot of two rerankers side by side (docs/compare.png): not a test.

The app is served on a free local port with the offline models, so nothing is downloaded: reranker A is
the late-interaction reranker over the bundled multilingual e5, reranker B late interaction over the
bundled all-MiniLM-L6-v2 (English-centric), on a Chinese question of the polyglot-facts sample.
Needs chromium (`apt-get install -y chromium`) and Playwright.

    python docs/compare_screenshot.py [--out docs/compare.png]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY = "茶是什么时候传入日本的？"  # "when did tea reach Japan?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "compare.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import expect, sync_playwright

    from search.models import FALLBACK_DENSE_ID

    os.environ.update({"SEARCH_DENSE_MODEL": FALLBACK_DENSE_ID, "SEARCH_RERANKER_MODEL": "late-interaction",
                       "SEARCH_CACHE_DIR": tempfile.mkdtemp(prefix="compare-shot-")})
    import app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = app.build_demo()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_kwargs())
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1700, "height": 1000}, device_scale_factor=1)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#build-button")
            page.get_by_text("Passages and models").click()
            for elem_id, value in (("compare-model", "late-interaction-minilm"),):
                page.click(f"#{elem_id} input")
                page.get_by_role("option", name=value, exact=True).click()
                expect(page.locator(f"#{elem_id} input")).to_have_value(value)
            page.click("#build-button")
            page.wait_for_selector("#build-summary .build-counts", timeout=300_000)
            page.fill("#query textarea", QUERY)
            page.click("#search-button")
            page.wait_for_selector('#column-rerank-b section[data-state="done"]', timeout=300_000)
            # Three results per column keep the picture readable.
            page.locator(".rr-columns").evaluate(
                "row => row.querySelectorAll('li.hit').forEach(card => { if (Number(card.dataset.rank) > 3) "
                "card.style.display = 'none'; })")
            page.locator(".rr-columns").scroll_into_view_if_needed()
            columns = page.locator(".rr-columns").bounding_box()
            summary = page.locator("#search-summary").bounding_box()
            scrolled = page.evaluate("window.scrollY")  # boxes are in the viewport, a full-page clip in the page
            top = columns["y"] + scrolled
            clip = {"x": columns["x"], "y": top, "width": columns["width"],
                    "height": summary["y"] + scrolled + summary["height"] - top}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), clip=clip, full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
