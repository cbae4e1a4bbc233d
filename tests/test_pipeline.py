"""The whole engine on a tiny multilingual corpus: build, the four stages, save/load and the index cache."""

from __future__ import annotations

import pytest

from search.models import FALLBACK_DENSE_ID, FALLBACK_LABEL, LATE_INTERACTION_LABEL
from search.pipeline import (
    BUILD_STEPS,
    BuildCancelled,
    Index,
    Settings,
    build,
    query_terms,
)
from search.policy import max_passages as max_passages_limit
from search.types import Language

DOCS = {
    "tea.txt": "Green tea is grown on terraced hillsides and picked by hand in spring.",
    "volcano.txt": "A volcano erupts when magma rises through cracks in the crust of the Earth.",
    "bees.txt": "Honeybees dance to tell their sisters where the best flowers are blooming.",
    "tee.txt": "Grüner Tee wird im Frühling an steilen Hängen von Hand gepflückt und getrocknet.",
    "chai.txt": "हरी चाय पहाड़ी ढलानों पर उगाई जाती है और वसंत में हाथ से तोड़ी जाती है।",
    "cha.md": "# 绿茶\n绿茶生长在梯田山坡上，春天由人工采摘，然后迅速加热以保持绿色。",
}
SETTINGS = Settings(dense_model=FALLBACK_DENSE_ID, rerankers=("late-interaction",), device="cpu")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def index(corpus):
    return build([corpus], SETTINGS)


def test_build_reports_counts_languages_and_every_step(corpus):
    events = []
    built = build([corpus], SETTINGS, progress=lambda step, done, total: events.append((step, done, total)))
    report = built.report
    assert (report.documents, report.passages, report.files_read) == (6, 6, 6)
    assert report.languages["en"] == 3 and report.languages["de"] == 1
    assert report.languages["hi"] == 1 and report.languages["zh"] == 1, report.languages
    assert set(report.timings_s) == set(BUILD_STEPS)
    assert [step for step in BUILD_STEPS if (step, 1, 1) in events or any(
        e[0] == step and e[1] == e[2] for e in events)] == list(BUILD_STEPS), events
    assert report.dense_fallback_reason is None and report.reused is False


def test_bm25_finds_the_one_document_with_a_rare_word(index):
    result = index.retrieve("magma", k=3, rerank_depth=0)
    bm25 = result.stages["bm25"]
    assert [hit.doc_id for hit in bm25.hits] == ["volcano"], "only one document mentions magma"
    assert bm25.hits[0].ranks["dense"] is not None and "rerank" not in bm25.hits[0].ranks
    assert set(result.stages) == {"bm25", "dense", "hybrid"}


def test_each_script_is_searchable(index):
    assert index.retrieve("चाय", k=1, rerank_depth=0).stages["bm25"].hits[0].doc_id == "chai"
    assert index.retrieve("梯田", k=1, rerank_depth=0).stages["bm25"].hits[0].doc_id == "cha"
    assert index.retrieve("gepflückt", k=1, rerank_depth=0).stages["bm25"].hits[0].doc_id == "tee"


def test_search_runs_all_four_stages_with_cross_ranks(index):
    result = index.search("how do bees tell where flowers are", k=3, rerank_depth=5, candidates_from="bm25")
    assert list(result.stages) == ["bm25", "dense", "hybrid", "rerank"]
    rerank = result.stages["rerank"]
    dense_form = result.stages["dense"].model.removeprefix(FALLBACK_LABEL)  # "" for torch, " · int8 …" for int8
    assert rerank.model == LATE_INTERACTION_LABEL + dense_form and rerank.error is None, "over the same bundled e5"
    assert rerank.hits[0].doc_id == "bees"
    assert [hit.rank for hit in rerank.hits] == list(range(1, len(rerank.hits) + 1))
    assert all(a.score >= b.score for a, b in zip(rerank.hits, rerank.hits[1:], strict=False))
    assert rerank.pairs_per_second and rerank.pairs_per_second > 0
    candidates = {hit.passage_id for hit in result.stages["bm25"].hits[:5]}
    assert {hit.passage_id for hit in rerank.hits} == candidates, "the reranker rescores the BM25 top 5 only"
    top = rerank.hits[0]
    assert top.ranks["bm25"] == next(h.rank for h in result.stages["bm25"].hits if h.passage_id == top.passage_id)
    assert top.sigmoid is None, "late interaction gives no logit, so no sigmoid"


def test_bad_depths_and_empty_queries_name_the_fix(index):
    with pytest.raises(ValueError, match="k=0"):
        index.retrieve("tea", k=0)
    with pytest.raises(ValueError, match="rerank_depth=-1"):
        index.retrieve("tea", rerank_depth=-1)
    with pytest.raises(ValueError, match="empty"):
        index.retrieve("   ")
    with pytest.raises(ValueError, match="first stage"):
        index.retrieve("tea", candidates_from="rerank")  # type: ignore[arg-type]


def test_passages_per_file_are_records_in_json_and_an_index_saved_with_arrays_still_loads(index, tmp_path):
    import json

    from search.export import report_to_dict

    # Six files of one short passage each: all tie at 1 passage and 1 document, so they come by name.
    names = ["bees.txt", "cha.md", "chai.txt", "tea.txt", "tee.txt", "volcano.txt"]
    sources = [item.source for item in index.report.per_source]
    assert [source.rsplit("/", 1)[-1] for source in sources] == names, sources
    records = [{"source": source, "passages": 1, "documents": 1} for source in sources]
    exported = json.loads(json.dumps(report_to_dict(index.report)))
    assert exported["per_source"] == records, "the app's build JSON names each number"

    folder = index.save(tmp_path / "saved")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["report"]["per_source"] == records, "so does a saved index"

    manifest["report"]["per_source"] = [[source, 1, 1] for source in sources]  # as indexes were saved before
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    older = Index.load(folder)
    assert older.report.per_source == index.report.per_source, "an index saved with arrays still loads"
    assert older.report.per_source[0].passages == 1 and older.report.per_source[0].source == sources[0]


def test_save_and_load_give_the_same_results(index, tmp_path):
    index.save(tmp_path / "saved")
    loaded = Index.load(tmp_path / "saved")
    assert loaded.passages == index.passages
    assert loaded.report.per_source == index.report.per_source and index.report.per_source, "passages per file"
    assert loaded.passage_terms == index.passage_terms
    # read back with one string object per distinct term (what keeps a large cached index small)
    by_value: dict[str, int] = {}
    for term in (term for terms in loaded.passage_terms for term in terms):
        assert by_value.setdefault(term, id(term)) == id(term), f"{term!r} is read back as two strings"
    assert len(by_value) < sum(map(len, loaded.passage_terms)), "the corpus repeats no term: nothing checked"
    for query in ("green tea", "चाय", "火山"):
        before, after = index.search(query, rerank_depth=4), loaded.search(query, rerank_depth=4)
        for stage in before.stages:
            assert [(h.passage_id, round(h.score, 5)) for h in before.stages[stage].hits] == \
                   [(h.passage_id, round(h.score, 5)) for h in after.stages[stage].hits], (query, stage)


def test_load_refuses_a_folder_without_an_index(tmp_path):
    with pytest.raises(ValueError, match="no saved index"):
        Index.load(tmp_path)


def test_the_same_corpus_is_never_embedded_twice(corpus, tmp_path):
    first = build([corpus], SETTINGS, cache_dir=tmp_path)
    events = []
    second = build([corpus], SETTINGS, cache_dir=tmp_path, progress=lambda *e: events.append(e))
    assert second.report.reused and not first.report.reused
    assert second.report.index_key == first.report.index_key
    assert "embeddings" not in second.report.timings_s, "a reused index must not be embedded again"
    assert second.passages == first.passages
    other = build([corpus], Settings(**{**SETTINGS.__dict__, "window": 50, "overlap": 10}), cache_dir=tmp_path)
    assert other.report.index_key != first.report.index_key and not other.report.reused


def test_good_files_are_kept_and_bad_ones_reported(tmp_path):
    (tmp_path / "good.txt").write_text("Lighthouses guide ships along rocky coasts at night.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "broken.jsonl").write_text('{"_id": "a", "text": "Owls hunt at night."}\n{oops\n', encoding="utf-8")
    built = build([tmp_path], SETTINGS)
    assert sorted(p.doc_id for p in built.passages) == ["a", "good"]
    messages = [str(p) for p in built.report.skipped]
    assert any("empty.txt" in m for m in messages) and any("broken.jsonl, line 2" in m for m in messages), messages


def test_nothing_readable_is_a_clear_error(tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no passage could be read.*empty.txt"):
        build([tmp_path], SETTINGS)


def test_queries_are_analysed_in_every_corpus_language():
    english = Language("en", "en", 0.99)
    assert query_terms("running", english, frozenset({"en"})) == ["run"]
    assert query_terms("running", Language("it", "it", 0.57), frozenset({"en", "de"})) == ["running", "run"]
    # a passage misdetected as Dutch was stemmed as Dutch; the Dutch analysis of the query finds it
    assert "tulp" in query_terms("tulpen", english, frozenset({"en", "nl"}))


def test_a_corpus_over_the_passage_limit_is_refused_naming_the_setting(corpus):
    with pytest.raises(ValueError, match=r"6 passages .*at most 5 \(SEARCH_MAX_PASSAGES\)"):
        build([corpus], SETTINGS, max_passages=5)
    assert build([corpus], SETTINGS, max_passages=6).report.passages == 6


def test_the_passage_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEARCH_MAX_PASSAGES", "1234")
    assert max_passages_limit() == 1234
    monkeypatch.setenv("SEARCH_MAX_PASSAGES", "0")
    assert max_passages_limit() is None
    monkeypatch.setenv("SEARCH_MAX_PASSAGES", "lots")
    with pytest.raises(ValueError, match="SEARCH_MAX_PASSAGES='lots' is not allowed: it takes a whole number from 0"):
        max_passages_limit()
    monkeypatch.delenv("SEARCH_MAX_PASSAGES")
    assert max_passages_limit() == 20_000


def test_the_passage_count_is_reported_before_embedding_starts(corpus):
    events = []
    build([corpus], SETTINGS, progress=lambda step, done, total: events.append((step, done, total)))
    embedding = [event for event in events if event[0] == "embeddings"]
    assert embedding[0] == ("embeddings", 0, 6) and embedding[-1] == ("embeddings", 6, 6), embedding


@pytest.mark.parametrize("stop_in", ["languages", "bm25", "embeddings"])
def test_a_build_stops_at_the_next_report_once_asked(corpus, stop_in):
    steps = []

    def progress(step, done, total):
        steps.append(step)

    with pytest.raises(BuildCancelled, match="the build was cancelled during"):
        build([corpus], SETTINGS, progress=progress, should_stop=lambda: stop_in in steps)
    assert steps[-1] == stop_in, f"reports went on after the stop: {steps}"


def test_results_compare_every_stage_and_every_cross_rank(index):
    from dataclasses import replace

    result = index.retrieve("green tea", k=3, rerank_depth=0)
    assert result == replace(result, stages=dict(result.stages))  # timings differ between runs, so compare a copy
    fewer = replace(result, stages={name: stage for name, stage in result.stages.items() if name != "dense"})
    assert fewer != result, "a result without its dense stage must not equal the full one"
    hit = result.stages["bm25"].hits[0]
    assert replace(hit, ranks={**hit.ranks, "dense": 99}) != hit
    assert hash(replace(hit, ranks={})) == hash(hit)


def test_a_reused_index_follows_the_query_time_settings_asked_for(corpus, tmp_path):
    from dataclasses import replace

    first = build([corpus], SETTINGS, cache_dir=tmp_path)
    assert not first.report.reused and first.settings.fusion == "relative-score"
    again = build([corpus], replace(SETTINGS, fusion="rrf", stopwords=False, bm25_statistics="corpus"),
                  cache_dir=tmp_path)
    assert again.report.reused, "the same passages and models: the saved index is reused"
    assert (again.settings.fusion, again.settings.stopwords, again.settings.bm25_statistics) == \
        ("rrf", False, "corpus"), "and searched as asked, not as it was first built"
    assert again.search("green tea", rerank_depth=0).stages["hybrid"].model.startswith("RRF"), "the header says so"
