"""The documentation stays true to the tree: the module map names every module, and every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchor(heading: str) -> str:
    # GitHub's rule: lower case, punctuation dropped, spaces to hyphens.
    return re.sub(r"[^\w\- ]", "", heading.strip("# ").lower()).replace(" ", "-")


def test_the_module_map_names_every_module_of_the_engine():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = {path.name for path in (ROOT / "search").glob("*.py") if path.stem not in ("__init__", "__main__")}
    packages = {f"{path.name}/" for path in (ROOT / "search").iterdir()
                if path.is_dir() and (path / "__init__.py").exists()}
    missing = sorted(name for name in modules | packages if f"`{name}`" not in page and f"{name}`" not in page)
    assert not missing, f"docs/architecture.md does not name {missing}"
    regions = {path.stem for path in (ROOT / "ui" / "regions").glob("*.py") if path.stem != "__init__"}
    assert all(f"`{name}`" in page or f"{name}.py" in page for name in regions), regions


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([^)#\s]+)(#[^)\s]+)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve()
            if not path.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and path.suffix == ".md":
                headings = [_anchor(line) for line in path.read_text(encoding="utf-8").splitlines()
                            if line.startswith("#")]
                if anchor[1:] not in headings:
                    broken.append(f"{page.name}: {target}{anchor}")
    assert not broken, broken
