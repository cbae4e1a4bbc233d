"""search.config: every setting in one table, one parser per kind, read from the environment once; the CLI's
flags and docs/settings.md come from the same table."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from search import config

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_a_field_and_every_variable_is_named_once():
    assert [option.name for option in config.OPTIONS] == [item.name for item in fields(config.Config)]
    variables = [option.env for option in config.OPTIONS if option.env]
    assert len(variables) == len(set(variables)), "a variable sets one setting"


def test_one_boolean_parser_for_every_switch():
    for word, value in (("on", True), ("YES", True), ("1", True), ("true", True), ("off", False), ("0", False),
                        ("no", False), ("", False)):
        loaded = config.load({"SEARCH_SERVE_TEI": word, "SEARCH_HIDE_TEI_URL": word,
                              "SEARCH_ALLOW_CUSTOM_MODELS": word})
        assert loaded.serve_tei is loaded.hide_tei_url is loaded.allow_custom_models is value, word


def test_a_bad_value_fails_at_start_naming_the_variable_and_what_it_takes():
    with pytest.raises(config.ConfigError) as error:
        config.load({"SEARCH_MAX_UPLOAD_MB": "lots", "SEARCH_MAX_PASSAGES": "-3", "SEARCH_SERVE_TEI": "maybe",
                     "SEARCH_BACKEND": "tpu", "SEARCH_K": "500"})
    message = str(error.value)
    for expected in ("SEARCH_MAX_UPLOAD_MB='lots' is not allowed: it takes a whole number from 1",
                     "SEARCH_MAX_PASSAGES='-3' is not allowed: it takes a whole number from 0 (0: no limit)",
                     "SEARCH_SERVE_TEI='maybe' is not allowed: it takes 1/true/yes/on or 0/false/no/off",
                     "SEARCH_BACKEND='tpu' is not allowed: it takes one of auto, torch, onnx, int8, tei",
                     "SEARCH_K='500' is not allowed: it takes a whole number from 1 to 50"):
        assert expected in message, (expected, message)


def test_a_secret_never_shows_in_errors_or_reprs():
    loaded = config.load({"HF_TOKEN": "hf_secret_123", "SEARCH_SERVE_API_KEY": "key_456"})
    assert "hf_secret_123" not in repr(loaded) and "key_456" not in repr(loaded)
    assert config.tei_token(loaded) == "hf_secret_123"
    assert config.tei_token(config.load({"HF_TOKEN": "a", "SEARCH_TEI_TOKEN": "b"})) == "b"


def test_rerankers_are_a_list_of_model_and_backend():
    loaded = config.load({"SEARCH_RERANKER_MODEL": "BAAI/bge-reranker-v2-m3, late-interaction-minilm@INT8"})
    assert loaded.rerankers == (("BAAI/bge-reranker-v2-m3", ""), ("late-interaction-minilm", "int8"))
    with pytest.raises(config.ConfigError, match="names no reranker"):
        config.load({"SEARCH_RERANKER_MODEL": " , "})


def test_the_environment_is_read_once_until_reset(monkeypatch):
    monkeypatch.setenv("SEARCH_K", "7")
    assert config.current().k == 7
    monkeypatch.setenv("SEARCH_K", "8")  # the test's monkeypatch resets the configuration, as a new start would
    assert config.current().k == 8
    with config.overridden(k=3):
        assert config.current().k == 3
    assert config.current().k == 8


def test_the_settings_page_lists_exactly_the_table():
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert config.markdown_table() in page, "docs/settings.md is out of date: paste config.markdown_table() in"


def test_the_cli_flags_come_from_the_table():
    from search.cli import _parser

    help_text = _parser()._subparsers._group_actions[0].choices["query"].format_help()
    for option in config.OPTIONS:
        if option.flag and option.group in ("models", "corpus", "view"):
            assert option.flag in help_text and option.env in help_text, option.name


def test_only_the_config_module_reads_the_environment():
    readers = []
    for path in [*sorted((ROOT / "search").rglob("*.py")), *sorted((ROOT / "ui").rglob("*.py")), ROOT / "app.py"]:
        if path == ROOT / "search" / "config.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert readers == [], f"read the setting through search.config instead: {readers}"


def test_a_setting_of_the_table_reaches_the_cli_the_panel_the_link_the_bundle_and_the_build(monkeypatch):
    # SEARCH_INDEX_TITLES was added with one line in the table, one field and one line in ui/share.py and one
    # widget: it reaches everything else with no other edit.
    from search.cli import _parser, _settings
    from search.pipeline import Settings
    from tests.app_page import make_page
    from ui.bundle import render_page
    from ui.regions.sharing import share_options
    from ui.share import build_overrides, parse_view, query_string

    assert config.load({"SEARCH_INDEX_TITLES": "off"}).index_titles is False
    monkeypatch.setenv("SEARCH_INDEX_TITLES", "0")
    assert Settings.from_config().index_titles is False
    args = _parser().parse_args(["query", "x", "--query", "tea", "--index-titles"])
    assert _settings(args).index_titles is True, "the flag overrides the environment"
    monkeypatch.delenv("SEARCH_INDEX_TITLES")

    page, ctx, demo = make_page()
    widget = ctx.form["index_titles"]
    assert widget.value is True and widget.elem_id == "index-titles", "the panel's checkbox, at its default"
    view = ctx.form.view({"index_titles": False, "query": "tea"})
    assert "titles=0" in query_string(view)
    restored = parse_view({"titles": "0", "q": "tea"}, share_options(ctx))
    assert restored.state.index_titles is False and ctx.form.restore(restored.state, restored.given)[widget] is False
    assert build_overrides(view)["index_titles"] is False
    from tests.hand_made import make_result, make_stage, ranked

    assert "Titles indexed with passages" in render_page(make_result([make_stage("bm25", ranked("a#0"))]), view)
