"""ui.share: a view written into a link reads back the same, and a bad link gives defaults and messages."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from ui.share import FIELDS, UPLOADED_NOTE, ShareOptions, ViewState, parse_view, query_string, share_link

DEFAULTS = ViewState(window=200, overlap=40, dense_model="dense-a", reranker_model="late-interaction",
                     backend="auto")
OPTIONS = ShareOptions(samples=("polyglot-facts", "mixed-formats"), dense_models=("dense-a", "dense-b"),
                       rerankers=("late-interaction", "BAAI/bge-reranker-base"), backends=("auto", "torch", "onnx"),
                       defaults=DEFAULTS)


def _read(link: str, options: ShareOptions = OPTIONS):
    return parse_view(dict(parse_qsl(urlsplit(link).query, keep_blank_values=True)), options)


def test_a_full_view_goes_into_a_link_and_comes_back_the_same():
    view = ViewState(sample="mixed-formats", query="Wie viele Bienen & 茶? =1+1 #frag", k=7, rerank_depth=50,
                     candidates_from="bm25", score_view="sigmoid", collapse=True, window=256, overlap=32,
                     dense_model="dense-b", reranker_model="BAAI/bge-reranker-base", backend="onnx",
                     compare_reranker="late-interaction", compare_backend="torch", index_titles=True)
    link = query_string(view)
    assert link.startswith("?sample=mixed-formats&q=Wie%20viele%20Bienen%20%26%20"), link
    assert "#" not in link and " " not in link, link
    parsed = _read("http://host/" + link)
    assert parsed.state == view
    assert parsed.problems == ()
    assert parsed.given == {item.name for item in FIELDS}


def test_every_field_has_its_own_parameter():
    assert len({item.parameter for item in FIELDS}) == len(FIELDS)
    assert {item.name for item in FIELDS} == set(ViewState().to_dict())


def test_missing_parameters_keep_the_defaults_and_are_not_given():
    parsed = _read("?q=tea")
    assert parsed.state == replace(DEFAULTS, query="tea")
    assert parsed.given == {"query"} and parsed.problems == ()


def test_bad_values_give_the_default_and_a_message_naming_value_and_fix():
    parsed = _read("?sample=nope&k=999&depth=-3&from=bogus&score=loud&docs=maybe&window=abc&dense=evil/model"
                   "&reranker=some/hub-model&backend=cuda-magic&compare=x")
    assert parsed.state == DEFAULTS, parsed.state
    assert parsed.given == frozenset()
    messages = "\n".join(parsed.problems)
    for expected in ("sample='nope' in the link is not a sample corpus offered here (polyglot-facts, mixed-formats)",
                     "k=999 in the link is out of range; use 1 to 50. Using k=10.",
                     "depth=-3 in the link is out of range; use 0 to 100. Using depth=20.",
                     "from='bogus' in the link is not a candidate stage offered here (bm25, dense, hybrid)",
                     "score='loud'", "docs='maybe' in the link is not 0 or 1",
                     "window='abc' in the link is not a whole number; use 32 to 1024. Using window=200.",
                     "dense='evil/model' in the link is not a dense model offered here",
                     "reranker='some/hub-model' in the link is not a reranker offered here",
                     "backend='cuda-magic'", "compare='x'"):
        assert expected in messages, (expected, messages)
    assert len(parsed.problems) == 11


def test_overlap_not_below_the_window_falls_back():
    parsed = _read("?window=64&overlap=64")
    assert parsed.state.window == 64 and parsed.state.overlap == 40
    assert "overlap=64 in the link is not smaller than window=64" in parsed.problems[0]


def test_an_overlap_fallback_is_itself_below_the_window():
    parsed = _read("?window=40&overlap=100")
    assert parsed.problems == ("overlap=100 in the link is not smaller than window=40; using overlap=36.",), \
        "the default overlap (40) is not below the window either"
    assert (parsed.state.window, parsed.state.overlap) == (40, 36)
    parsed = _read("?window=40&overlap=40")
    assert (parsed.state.window, parsed.state.overlap) == (40, 36)
    assert "overlap=40 in the link is not smaller than window=40; using overlap=36." in parsed.problems
    parsed = _read("?window=33")
    assert (parsed.state.window, parsed.state.overlap) == (33, 32), "the default overlap 40 is too big"
    assert parsed.problems == ("overlap=40 (the default) is not smaller than window=33; using overlap=32.",)
    tiny = replace(OPTIONS, window_range=(1, 1024))
    assert _read("?window=1&overlap=3", tiny).state.overlap == 0, "never below 0"
    assert _read("?window=2&overlap=3", replace(tiny, defaults=replace(DEFAULTS, overlap=None))).state.overlap == 0


def test_custom_models_are_accepted_only_when_the_options_allow_any():
    anything = replace(OPTIONS, dense_models=None, rerankers=None)
    assert _read("?reranker=my/own-reranker", anything).state.reranker_model == "my/own-reranker"
    assert _read("?reranker=my/own-reranker").state.reranker_model == "late-interaction"
    assert _read("?reranker=%0Abad%00", anything).problems, "a control character is no model name"


def test_the_query_is_cleaned_and_bounded():
    assert _read("?q=%20tea%00%E2%80%AEtime%0A%0Anow%20").state.query == "tea time now"
    long = _read("?q=" + "a" * 1001)
    assert long.state.query == "" and "1,001 characters long; a query has at most 1,000 (SEARCH_MAX_QUERY_CHARS)" \
        in long.problems[0]
    assert _read("?q=" + "a" * 1000).state.query == "a" * 1000, "a link carries every query the app searches"
    huge = _read("?k=" + "9" * 5000)
    assert huge.state.k == 10 and "too long" in huge.problems[0]
    assert len(huge.problems[0]) < 200, "a raw value is never echoed in full"


def test_unknown_parameters_are_ignored():
    parsed = _read("?__theme=dark&view=api&q=tea")
    assert parsed.problems == () and parsed.given == {"query"}


def test_an_uploaded_corpus_leaves_the_sample_out_and_says_so():
    view = replace(DEFAULTS, sample="polyglot-facts", query="tea")
    uploaded = share_link(view, uploaded=True)
    assert "sample=" not in uploaded.query_string and "q=tea" in uploaded.query_string
    assert uploaded.note == UPLOADED_NOTE and "cannot carry uploaded files" in uploaded.note
    sample = share_link(view, uploaded=False)
    assert "sample=polyglot-facts" in sample.query_string and sample.note == ""


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([item.parameter for item in FIELDS] + ["other"]), st.text(max_size=80)))
def test_any_parameters_give_a_valid_view_and_never_raise(params):
    parsed = parse_view(params, OPTIONS)
    state = parsed.state
    assert 1 <= state.k <= 50 and 0 <= state.rerank_depth <= 100
    assert state.sample in (None, *OPTIONS.samples) and state.reranker_model in OPTIONS.rerankers
    assert state.candidates_from in ("bm25", "dense", "hybrid") and state.score_view in ("raw", "sigmoid")
    assert state.overlap < state.window
    assert parse_view(dict(parse_qsl(query_string(state)[1:], keep_blank_values=True)), OPTIONS).state == state


def test_the_apps_own_view_reads_back_from_its_link():
    from tests.app_page import make_page
    from ui.regions.page import NO_SAMPLE, SAMPLE_NAMES
    from ui.regions.sharing import share_options

    page, ctx, _ = make_page()
    options = share_options(ctx)
    assert options.samples == ("polyglot-facts", "mixed-formats")
    defaults = options.defaults
    view = ctx.form.view({"sample": SAMPLE_NAMES["mixed-formats"], "query": " tea ", "k": 5, "rerank_depth": 0,
                          "candidates_from": "dense", "score_view": "sigmoid", "collapse": True,
                          "window": defaults.window, "overlap": defaults.overlap, "dense_model": defaults.dense_model,
                          "reranker_model": defaults.reranker_model, "backend": defaults.backend,
                          "compare_reranker": "none", "compare_backend": "same as A"})
    assert view.sample == "mixed-formats" and view.query == "tea" and view.rerank_depth == 0
    assert view.compare_reranker is None and view.compare_backend is None
    parsed = _read(query_string(view), options)
    assert parsed.state == view and parsed.problems == ()
    uploads = ctx.form.view({"sample": NO_SAMPLE, "query": "", "reranker_model": "", "dense_model": ""})
    assert uploads.sample is None and uploads.reranker_model is None
