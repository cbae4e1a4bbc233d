"""The Space's requirements.txt and pyproject.toml must name the same runtime packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(specs):
    return {re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower() for spec in specs if spec.strip()}


def test_requirements_txt_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = [line for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    # The Space also gets the [openvino] extra: the int8 backend is meant for its 2 CPUs.
    assert _names(lines) == _names(project["dependencies"] + project["optional-dependencies"]["openvino"])
    assert "torch==2.13.0" in lines, "pin torch: an unpinned torch pulls a multi-GB CUDA build"


def test_space_front_matter():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\n"), "a Space reads its settings from YAML front matter"
    front = readme.split("---\n")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    import gradio

    assert fields["sdk_version"] == gradio.__version__, "the Space should run the Gradio version we test"
    assert len(fields["short_description"]) <= 60 and fields["title"] and fields["emoji"]


def test_every_package_is_listed_for_setuptools():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for top in ("search", "ui")
             for init in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages, or installs will miss them"
