"""Every script readable: a static page with the app's stylesheet shows a line of each script of the sample
corpus (corpora/polyglot-facts; Greek and Hebrew, which it lacks, written here) in a real browser, and no
character may fall back to the missing-glyph box.

A character is a box when it draws exactly the same pixels as U+10FFFD (a private-use code point no font
has) in the same font stack, which is what the browser draws for any character no installed font covers.
The check is shown to fail without the fonts: a second chromium that sees only one Latin font (through its
own fontconfig file) finds boxes in Devanagari, Thai and CJK. A font stack alone can't show that, since the
browser falls back to any installed font that has the character, whatever the stack names.

Needs Debian's fonts-noto-core and fonts-noto-cjk (packages.txt; .ci/run installs them). Skips when chromium
is absent (install it with `apt-get install -y chromium`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ui import stylesheet
from ui.html import Markup, element, join

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # as tests/conftest.py finds it
SAMPLE = ROOT / "corpora" / "polyglot-facts" / "corpus.jsonl"
PACKAGES = (ROOT / "packages.txt").read_text(encoding="utf-8").split()
# One document per script of the sample: Latin (with German, French and Spanish letters), Cyrillic, Arabic,
# Devanagari, Thai, Chinese (Han), Japanese (kana and kanji).
SAMPLE_DOCUMENTS = ("tea-en", "tea-de", "tea-fr", "tea-es", "tea-ru", "tea-ar", "tea-hi", "tea-th", "tea-zh", "tea-ja")
WRITTEN_HERE = {  # scripts the stack must cover that the sample has no document in
    "el": "Η Σελήνη είναι ο μοναδικός φυσικός δορυφόρος της Γης· το τσάι ήρθε στην Ευρώπη τον 17ο αιώνα.",
    "he": "הירח הוא הלוויין הטבעי היחיד של כדור הארץ; התה הגיע לאירופה במאה ה־17.",
}

# For each line: the characters that draw exactly what U+10FFFD draws in the line's own computed font.
FIND_BOXES = """
() => {
  const canvas = document.createElement('canvas');
  canvas.width = 72; canvas.height = 72;
  const context = canvas.getContext('2d', {willReadFrequently: true});
  const found = {};
  for (const line of document.querySelectorAll('p.snippet[data-lang]')) {
    context.font = '48px ' + getComputedStyle(line).fontFamily;
    context.textBaseline = 'middle';
    const pixels = (text) => {
      context.clearRect(0, 0, 72, 72);
      context.fillText(text, 8, 36);
      return context.getImageData(0, 0, 72, 72).data.join();
    };
    const box = pixels('\\u{10FFFD}');
    const boxes = [];
    for (const character of new Set(Array.from(line.textContent))) {
      if (/\\s/u.test(character)) continue;
      if (pixels(character) === box) boxes.push(character);
    }
    found[line.dataset.lang] = boxes.join('');
  }
  return found;
}
"""


def sample_lines() -> dict[str, str]:
    """Language -> the title and text of its document in SAMPLE_DOCUMENTS, then the lines written here."""
    documents = {}
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["_id"] in SAMPLE_DOCUMENTS:
            documents[row["_id"].split("-")[1]] = f"{row['title']} {row['text']}"
    assert len(documents) == len(SAMPLE_DOCUMENTS), f"the sample lacks some of {SAMPLE_DOCUMENTS}"
    return {**documents, **WRITTEN_HERE}


def script_page() -> str:
    paragraphs = [element("p", text, class_="snippet", data_lang=code, dir="auto")
                  for code, text in sample_lines().items()]
    head = element("head", Markup('<meta charset="utf-8">'), element("style", Markup(stylesheet())))
    body = element("body", element("section", join(paragraphs), class_="stage-column"), class_="bundle-page")
    return f"<!DOCTYPE html>\n{element('html', head, body)}"


def find_boxes(browser) -> tuple[dict[str, str], str]:
    page = browser.new_page()
    try:
        page.set_content(script_page())
        family = page.evaluate("getComputedStyle(document.querySelector('p.snippet')).fontFamily")
        return page.evaluate(FIND_BOXES), family
    finally:
        page.close()


def test_every_script_of_the_sample_renders_without_boxes(browser):
    boxes, family = find_boxes(browser)
    assert family.startswith('"Noto Sans", "Noto Sans Arabic"'), f"the stylesheet's font stack applies: {family}"
    assert set(boxes) == {"en", "de", "fr", "es", "ru", "ar", "hi", "th", "zh", "ja", "el", "he"}
    missing = {code: characters for code, characters in boxes.items() if characters}
    assert not missing, (f"characters drawn as boxes: {missing}; install the fonts with: "
                         f"apt-get install -y {' '.join(PACKAGES)}")


def _one_latin_font() -> Path:
    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "NotoSans-Regular.ttf"):
        found = sorted(Path("/usr/share/fonts").rglob(name))
        if found:
            return found[0]
    pytest.skip("no DejaVu, Liberation or Noto Sans font file under /usr/share/fonts")


def test_the_check_finds_boxes_when_the_fonts_are_missing(browser, tmp_path):
    # The same page in a chromium whose fontconfig knows one Latin font only: as on a machine without the
    # packages, Devanagari, Thai and CJK have no font, and the check must say so.
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / _one_latin_font().name).symlink_to(_one_latin_font())
    config = tmp_path / "fonts.conf"
    config.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
                      f"<dir>{fonts}</dir><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>\n", encoding="utf-8")
    bare = browser.browser_type.launch(executable_path=str(CHROMIUM), headless=True,
                                       args=["--no-sandbox", "--disable-gpu"],
                                       env={"FONTCONFIG_FILE": str(config), "HOME": str(tmp_path)})
    try:
        boxes, _ = find_boxes(bare)
    finally:
        bare.close()
    for code in ("hi", "th", "zh", "ja"):
        assert boxes[code], f"{code}: no box found although no font has the script"
    assert not boxes["en"], "the one Latin font covers English"
