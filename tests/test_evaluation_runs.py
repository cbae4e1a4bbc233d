"""Evaluation runs on a tiny corpus with the bundled offline models: where relevant documents landed,
cancellation, the run-time estimate and the rerank-depth trade-off against direct runs."""

from __future__ import annotations

import pytest

from search import estimates
from search.evaluation import (
    DepthPoint,
    depth_tradeoff,
    estimate_evaluation,
    evaluate,
    stage_rankings,
)
from search.judgments import Judgments, Query
from search.models import FALLBACK_DENSE_ID
from search.pipeline import Settings, build

DOCS = {
    "tea.txt": "Green tea is grown on terraced hillsides and picked by hand in spring.",
    "volcano.txt": "A volcano erupts when magma rises through cracks in the crust of the Earth.",
    "magma.txt": "Magma cools into basalt. Magma chambers feed a volcano.",
    "bees.txt": "Honeybees dance to tell their sisters where the best flowers are blooming.",
    "rivers.txt": "Rivers carry sand and gravel from the mountains down to the sea.",
    "bread.txt": "Bread rises when yeast turns sugar into gas inside the warm dough.",
}
# BM25, checked by hand: "magma" is in magma.txt twice (and it is shorter) and in volcano.txt once;
# "volcano" is in both once, so the shorter magma.txt wins; only bees.txt has "honeybees".
JUDGMENTS = Judgments(
    queries=(Query("q1", "magma"), Query("q2", "honeybees flowers"), Query("q3", "volcano"),
             Query("q4", "basalt"), Query("q5", "no judgments here")),
    qrels={"q1": {"volcano": 2, "tea": 1, "magma": 0}, "q2": {"bees": 1}, "q3": {"magma": 1, "volcano": 1},
           "q4": {"tea": 1}},
)
SETTINGS = Settings(dense_model=FALLBACK_DENSE_ID, rerankers=("late-interaction",), device="cpu")


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return build([folder], SETTINGS)


def test_landed_ranks_of_the_relevant_documents(index):
    report = evaluate(index, JUDGMENTS, rerank_depth=4)
    assert report.queries == 4 and report.level == "document"
    assert report.query_texts == {"q1": "magma", "q2": "honeybees flowers", "q3": "volcano", "q4": "basalt"}
    # q1: magma.txt (grade 0) first, volcano.txt second, tea.txt not retrieved by BM25.
    assert report.landed["bm25"] == {"q1": (2,), "q2": (1,), "q3": (1, 2), "q4": ()}, report.landed["bm25"]
    for stage in ("dense", "hybrid", "rerank"):
        for query in JUDGMENTS.queries[:4]:
            result = index.search(query.text, k=100, rerank_depth=4)
            ranking = stage_rankings(result, "document")[stage]
            expected = tuple(rank for rank, doc in enumerate(ranking, 1) if JUDGMENTS.qrels[query.query_id].get(doc))
            assert report.landed[stage][query.query_id] == expected, (stage, query)
    assert set(report.per_query) == set(report.landed) == {"bm25", "dense", "hybrid", "rerank"}
    assert report.per_query["bm25"]["q4"]["ndcg@10"] == 0.0
    assert set(report.to_json()) == {"passages", "queries", "languages", "query_languages", "models", "stages",
                                     "timings_s", "level", "judged_ids", "matched_ids", "notes", "cancelled"}
    assert report.query_languages == report.to_json()["query_languages"] and sum(report.query_languages.values()) == 4


def test_cancelling_keeps_the_finished_queries(index):
    polls = iter([False, False, True, True, True])
    seen = []
    report = evaluate(index, JUDGMENTS, stages=["bm25"], rerank_depth=0, should_stop=lambda: next(polls),
                      progress=lambda done, total: seen.append((done, total)))
    assert report.cancelled and report.queries == 2
    assert seen == [(1, 4), (2, 4)]
    assert list(report.query_texts) == ["q1", "q2"] and set(report.per_query["bm25"]) == {"q1", "q2"}
    assert report.stages["bm25"]["recall@10"] == pytest.approx((0.5 + 1.0) / 2)


def test_cancelling_before_any_query_reports_no_metrics(index):
    report = evaluate(index, JUDGMENTS, stages=["bm25"], should_stop=lambda: True)
    assert report.cancelled and report.queries == 0 and report.stages == {} and report.landed == {}


def test_estimate_counts_late_interactions_passages_once_not_every_pair(index):
    # Late interaction encodes each passage once and keeps it: 50 queries x 4 candidates over this corpus of
    # 6 passages encode the 6 passages and the 50 queries, not 200 pairs. (Counted as pairs, the estimate
    # was 8x the sample corpus' run time in the app: 92.1 s for 11.6 s.)
    stages = ["bm25", "dense", "hybrid", "rerank"]
    backend = index.reranker().model.inner
    backend.clear_cache()
    assert len(index) == 6 and backend.unencoded(index.rerank_texts()) == 6
    # Sample queries no test ran before: none of their pairs is in the score cache.
    estimate = estimate_evaluation(index, 50, stages=stages, rerank_depth=4, candidates_from="hybrid",
                                   sample_queries=["where is tea grown", "what do bees do"])
    assert estimate.queries == 50 and estimate.first_stage_seconds > 0
    speed = estimate.passages_per_second["rerank"]
    assert speed == estimates.passages_per_second(backend.encoder) > 0, "its encoder's speed measured here"
    assert estimate.pairs_per_second == {} and estimate.passages_to_encode == {"rerank": 6}
    assert estimate.seconds == pytest.approx(50 * estimate.first_stage_seconds + (50 + 6) / speed)

    one = estimate_evaluation(index, 1, stages=stages, rerank_depth=4, candidates_from="hybrid",
                              sample_queries=["how is bread made"])
    assert one.passages_to_encode == {"rerank": 4}, "one query encodes at most its 4 candidates"

    backend.score("a query that encodes the corpus", index.rerank_texts())
    rivers = "why do rivers carry sand"
    again = estimate_evaluation(index, 50, stages=stages, rerank_depth=4, candidates_from="hybrid",
                                sample_queries=[rivers])
    assert again.passages_to_encode == {"rerank": 0}, "every passage is encoded already: only the queries remain"
    assert again.seconds == pytest.approx(50 * again.first_stage_seconds + 50 / again.passages_per_second["rerank"])

    # The same queries again (a second run): their pairs are in the score cache, nothing is reranked.
    index.rerank(index.retrieve(rivers, k=100, rerank_depth=4, candidates_from="hybrid"))
    repeat = estimate_evaluation(index, 50, stages=stages, rerank_depth=4, candidates_from="hybrid",
                                 sample_queries=[rivers])
    assert repeat.passages_to_encode == repeat.passages_per_second == {}, "nothing to rerank: nothing measured"
    assert repeat.seconds == pytest.approx(50 * repeat.first_stage_seconds), "the first stages only"

    first_only = estimate_evaluation(index, 50, stages=["bm25"], rerank_depth=20, candidates_from="hybrid",
                                     sample_queries=["magma"])
    assert first_only.pairs_per_second == first_only.passages_per_second == {} and first_only.seconds > 0
    with pytest.raises(ValueError, match="sample query"):
        estimate_evaluation(index, 5, stages=["bm25"], rerank_depth=0, candidates_from="bm25", sample_queries=[" "])


PASSAGES_PER_SECOND = 10.0  # the encoder's speed these tests set, so every estimate can be checked by hand


def _set_encoder_speed(monkeypatch, encoder) -> None:
    # Fresh meters (restored after the test) holding only PASSAGES_PER_SECOND for `encoder`.
    monkeypatch.setattr(estimates, "_meters", {})
    for _ in range(2):  # the first batch only stands until the second; both at 0.1 s a passage
        estimates.record(encoder, 10, 10 / PASSAGES_PER_SECOND)


def test_the_depth_sliders_estimate_and_evaluates_count_a_late_interaction_query_alike(index, monkeypatch):
    from ui import columns
    from ui.regions.search import rerank_estimate

    model = index.reranker().model
    backend = model.passage_caching()
    backend.clear_cache()
    _set_encoder_speed(monkeypatch, backend.encoder)
    query = "tea picked on terraced hillsides by hand"  # no other test searches it: no pair is cached
    result = index.retrieve(query, k=100, rerank_depth=4, candidates_from="hybrid")
    assert len(result.stages["hybrid"].hits[:4]) == 4 and backend.unencoded(index.rerank_texts()) == 6

    # By hand: one query and its 4 candidates to encode at 10 passages/s = 0.5 s (counted by pairs, the slider
    # said 4 pairs at the reranker's own speed per pair, Evaluate 0.5 s).
    slider = index.expected_rerank_seconds(result)
    assert slider == pytest.approx(0.5), f"the slider's estimate is {slider}, not (1 + 4) / 10"
    one = estimate_evaluation(index, 1, stages=["hybrid", "rerank"], rerank_depth=4, candidates_from="hybrid",
                              sample_queries=[query])
    assert one.seconds - one.first_stage_seconds == pytest.approx(slider), "Evaluate counts one query the same"
    assert one.passages_per_second == {"rerank": PASSAGES_PER_SECOND} and one.passages_to_encode == {"rerank": 4}
    assert rerank_estimate(index, result, 4, "hybrid") == columns.render_rerank_estimate(0.5, 4), \
        "the text beside the slider says the engine's figure"
    fifty = estimate_evaluation(index, 50, stages=["hybrid", "rerank"], rerank_depth=4, candidates_from="hybrid",
                                sample_queries=[query])
    assert fifty.seconds - 50 * fifty.first_stage_seconds == pytest.approx((50 + 6) / PASSAGES_PER_SECOND), \
        "50 queries encode the corpus' 6 passages once"

    backend.score("a query that encodes the corpus", index.rerank_texts())
    _set_encoder_speed(monkeypatch, backend.encoder)  # that encoding was measured too: set the speed again
    assert index.expected_rerank_seconds(result) == pytest.approx(0.1), "every passage is encoded: the query only"
    again = estimate_evaluation(index, 1, stages=["hybrid", "rerank"], rerank_depth=4, candidates_from="hybrid",
                                sample_queries=[query])
    assert again.seconds - again.first_stage_seconds == pytest.approx(0.1)
    assert index.expected_rerank_seconds(None, 4) == pytest.approx(0.5), "no search yet: 4 candidates, none encoded"


def test_an_estimate_with_nothing_to_rerank_neither_measures_nor_counts_the_encoder(index, monkeypatch):
    backend = index.reranker().model.passage_caching()
    monkeypatch.setattr(estimates, "_meters", {})  # nothing measured the encoder in this test's process state
    stages = ["bm25", "rerank"]

    def measured() -> int:
        return estimates.meter(backend.encoder).snapshot().batches

    off = estimate_evaluation(index, 20, stages=stages, rerank_depth=0, candidates_from="bm25",
                              sample_queries=["magma"])
    assert off.passages_per_second == off.passages_to_encode == {} and measured() == 0, "depth 0: nothing to rerank"
    assert off.seconds == pytest.approx(20 * off.first_stage_seconds)

    # BM25 finds no passage for a word of no document: no candidate to rerank at depth 4.
    nothing = "zyxwvut"
    assert index.retrieve(nothing, k=100, rerank_depth=4, candidates_from="bm25").stages["bm25"].hits == ()
    empty = estimate_evaluation(index, 20, stages=stages, rerank_depth=4, candidates_from="bm25",
                                sample_queries=[nothing])
    assert measured() == 0, "no candidate: the encoder was measured for nothing"
    assert empty.passages_per_second == empty.passages_to_encode == {}
    assert empty.seconds == pytest.approx(20 * empty.first_stage_seconds), "and charged nothing"

    index.rerank(index.retrieve("magma", k=100, rerank_depth=4, candidates_from="bm25"))
    monkeypatch.setattr(estimates, "_meters", {})  # that rerank measured the encoder: forget it
    cached = estimate_evaluation(index, 20, stages=stages, rerank_depth=4, candidates_from="bm25",
                                 sample_queries=["magma"])
    assert measured() == 0, "every pair is cached: the encoder was measured for nothing"
    assert cached.seconds == pytest.approx(20 * cached.first_stage_seconds)


def test_the_estimate_asks_the_reranker_how_it_reranks_through_any_wrapper(index, monkeypatch):
    # A wrapper around late interaction that is not the score cache (here the tests' GatedReranker, open) has no
    # `inner` that is a PassageCachingReranker itself; the interface's passage_caching() still finds it.
    from tests.gated import GatedReranker

    cached = index.reranker().model
    backend = cached.passage_caching()
    gated = GatedReranker(backend)
    gated.open()
    monkeypatch.setattr(cached, "inner", gated)
    assert cached.passage_caching() is backend and gated.passage_caching() is backend
    _set_encoder_speed(monkeypatch, backend.encoder)
    backend.clear_cache()
    estimate = estimate_evaluation(index, 10, stages=["hybrid", "rerank"], rerank_depth=2, candidates_from="hybrid",
                                   sample_queries=["sand and gravel carried by water"])
    assert estimate.passages_per_second == {"rerank": PASSAGES_PER_SECOND}, "counted by passages, not pairs"
    assert estimate.pairs_per_second == {} and estimate.passages_to_encode == {"rerank": 6}


def test_depth_tradeoff_equals_direct_runs(index):
    progress = []
    points = depth_tradeoff(index, JUDGMENTS, depths=(3, 1, 2, 100, 50), candidates_from="hybrid",
                            progress=lambda done, total: progress.append(done))
    assert [point.depth for point in points] == [1, 2, 3, 6], "clipped to the corpus' 6 passages, once each"
    assert progress == [1, 2, 3, 4]
    assert len({round(point.ndcg_at_10, 9) for point in points}) > 1, "the depths must rank differently here"
    for point in points:
        direct = evaluate(index, JUDGMENTS, stages=["hybrid", "rerank"], rerank_depth=point.depth,
                          candidates_from="hybrid")
        assert point.ndcg_at_10 == pytest.approx(direct.stages["rerank"]["ndcg@10"]), point
    seconds = [point.seconds_per_query for point in points]
    assert all(s > 0 for s in seconds) and seconds == sorted(seconds)


def test_depth_tradeoff_stops_and_validates(index):
    finished = []  # stop once the first query is done (the reranker polls too, so count queries, not polls)
    points = depth_tradeoff(index, JUDGMENTS, depths=(2,), candidates_from="bm25", should_stop=lambda: bool(finished),
                            progress=lambda done, total: finished.append(done))
    direct = evaluate(index, JUDGMENTS, stages=["bm25", "rerank"], rerank_depth=2, candidates_from="bm25",
                      max_queries=1)
    assert points == (DepthPoint(2, pytest.approx(direct.stages["rerank"]["ndcg@10"]), points[0].seconds_per_query),)
    assert depth_tradeoff(index, JUDGMENTS, depths=(2,), should_stop=lambda: True) == ()
    with pytest.raises(ValueError, match="at least 1"):
        depth_tradeoff(index, JUDGMENTS, depths=(0, 10))


def test_the_rerank_stage_needs_a_rerank_depth(index):
    with pytest.raises(ValueError, match="rerank_depth >= 1"):
        evaluate(index, JUDGMENTS, stages=["bm25", "rerank"], rerank_depth=0)


# -- SQuAD: the corpus and the judgments name paragraphs alike -----------------------------------------

SQUAD_IDS = {
    "version": "1.1",
    "data": [
        {"title": "Ids", "paragraphs": [
            {"id": "p1", "context": "Penguins huddle together through the polar winter.",
             "qas": [{"id": "q-penguins", "question": "penguins huddle"}]},
            {"context": "Glaciers carve valleys into granite mountains.",
             "qas": [{"id": "q-glaciers", "question": "glaciers carve valleys"}]},
            {"id": None, "context": "Lanterns glowed along the harbour at dusk.",
             "qas": [{"question": "lanterns harbour"}]},
            {"id": " p2 ", "context": "Cinnamon comes from the bark of a tropical tree.",
             "qas": [{"id": "q-cinnamon", "question": "cinnamon bark"}]},
            {"id": "dup", "context": "Violins are carved from spruce and maple.",
             "qas": [{"id": "q-violins", "question": "violins spruce maple"}]},
            {"id": "dup", "context": "Comets grow tails of gas near the sun.",
             "qas": [{"id": "q-comets", "question": "comets tails gas"}]},
            {"id": 7, "context": "Otters float on their backs to crack shells.",
             "qas": [{"id": "q-otters", "question": "otters crack shells"}]},
        ]},
    ],
}


def test_squad_questions_are_judged_against_their_own_paragraph_ids(tmp_path):
    import json

    from search.datasets import load_dataset

    path = tmp_path / "squad-ids.json"
    path.write_text(json.dumps(SQUAD_IDS), encoding="utf-8")
    dataset = load_dataset(path)
    corpus_ids = [document.doc_id for document in dataset.corpus.documents]
    assert corpus_ids == ["p1", "0-1", "0-2", "p2", "dup", "dup~2", "7"], corpus_ids
    judged = {query.query_id: next(iter(dataset.judgments.qrels[query.query_id]))
              for query in dataset.judgments.queries}
    assert judged == {"q-penguins": "p1", "q-glaciers": "0-1", "0-2-q2": "0-2", "q-cinnamon": "p2",
                      "q-violins": "dup", "q-comets": "dup~2", "q-otters": "7"}, judged
    texts = {document.doc_id: document.text for document in dataset.corpus.documents}
    for query in dataset.judgments.queries:  # each judged paragraph holds its question's first word
        first_word = query.text.split()[0]
        assert first_word in texts[judged[query.query_id]].lower(), (query, judged[query.query_id])
    index = build(dataset.corpus, SETTINGS)
    report = evaluate(index, dataset.judgments, stages=("bm25",))
    assert report.matched_ids == report.judged_ids == 7
    assert report.landed["bm25"] == {query_id: (1,) for query_id in judged}, report.landed["bm25"]


def test_the_depth_tradeoff_after_an_evaluation_scores_no_pair_again(index):
    judgments = Judgments(queries=(Query("f1", "magma basalt chambers"), Query("f2", "yeast dough sugar")),
                          qrels={"f1": {"magma": 1}, "f2": {"bread": 1}})
    cache = index.reranker().model.cache
    before = cache.stats()
    evaluate(index, judgments, stages=["hybrid", "rerank"], rerank_depth=6, candidates_from="hybrid")
    scored = cache.stats().misses - before.misses
    assert scored == 12, "two new queries, six candidates each"

    points = depth_tradeoff(index, judgments, depths=(2, 4, 6), candidates_from="hybrid")

    assert cache.stats().misses - before.misses == scored, "every pair was scored by the evaluation already"
    throughput = index.reranker().model.throughput()
    retrieve = points[0].seconds_per_query - 2 * throughput.seconds_per_pair
    assert retrieve > 0
    assert [p.seconds_per_query for p in points] == pytest.approx(
        [retrieve + depth * throughput.seconds_per_pair for depth in (2, 4, 6)]), "timed with the measured speed"


def test_evaluate_reports_the_rerankers_measured_speed_and_cancels_inside_a_rerank(index):
    report = evaluate(index, JUDGMENTS, stages=["hybrid", "rerank"], rerank_depth=4)
    assert report.timings_s["rerank_pairs_per_second"] == index.reranker().model.throughput().pairs_per_second

    fresh = Judgments(queries=(Query("g1", "terraced hillsides picked by hand"),), qrels={"g1": {"tea": 1}})
    polls = []
    cancelled = evaluate(index, fresh, stages=["hybrid", "rerank"], rerank_depth=4,
                         should_stop=lambda: polls.append(1) or len(polls) >= 2)
    assert len(polls) == 2, "the second poll is the reranker's, before its first batch"
    assert cancelled.cancelled and cancelled.queries == 0 and cancelled.stages == {}


def _squad(paragraphs: list[tuple[str, list[tuple[str, str]]]]) -> dict:
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": [{"id": qid, "question": question, "answers": []} for qid, question in qas]}
        for context, qas in paragraphs]}]}


GERMAN = _squad([
    ("Der Tee kam im neunten Jahrhundert mit buddhistischen Mönchen aus China nach Japan und wurde dort "
     "zuerst in Klöstern getrunken.", [("q-tea", "Wie kam der Tee nach Japan?")]),
    ("Der Rhein entspringt in den Schweizer Alpen, fließt durch Basel, Köln und Düsseldorf und mündet in "
     "den Niederlanden in die Nordsee.", [("q-rhine", "Wo mündet der Rhein?")]),
    ("Honigbienen zeigen ihren Schwestern mit einem Schwänzeltanz, in welcher Richtung und Entfernung die "
     "besten Blüten zu finden sind.", [("q-bees", "Wie zeigen Bienen den Weg zu Blüten?")]),
])
ENGLISH = _squad([
    ("Tea reached Japan from China in the ninth century.", [("q-tea", "How did tea come to Japan?")]),
    ("The Rhine flows into the North Sea.", [("q-rhine", "Where does the Rhine river end?"),
                                              ("q-extra", "A question the German file does not have")]),
    ("Honeybees dance.", [("q-bees", "How do honeybees show the way to flowers?")]),
])


def test_questions_of_one_language_against_the_passages_of_another(tmp_path):
    import json

    from search.datasets import load_dataset

    german, english = tmp_path / "xq.de.json", tmp_path / "xq.en.json"
    german.write_text(json.dumps(GERMAN, ensure_ascii=False), encoding="utf-8")
    english.write_text(json.dumps(ENGLISH), encoding="utf-8")
    dataset = load_dataset(german, queries_from=english)
    assert dataset.name == "xq.de (queries of xq.en)"
    assert [document.text[:10] for document in dataset.corpus.documents] == ["Der Tee ka", "Der Rhein ", "Honigbiene"]
    assert [query.text for query in dataset.judgments.queries] == [
        "How did tea come to Japan?", "Where does the Rhine river end?", "How do honeybees show the way to flowers?"]
    assert dict(dataset.judgments.qrels) == {"q-tea": {"0-0": 1}, "q-rhine": {"0-1": 1}, "q-bees": {"0-2": 1}}
    assert [str(problem) for problem in dataset.judgments.problems] == [
        f"{english}: 1 of its 4 queries has no judgments in the dataset and is left out"]

    index = build(dataset.corpus, SETTINGS)
    report = evaluate(index, dataset.judgments, stages=("bm25", "dense", "hybrid"))
    assert report.languages == {"de": 3} and report.query_languages == {"en": 3}, report
    assert report.to_json()["query_languages"] == {"en": 3}
    assert report.landed["dense"] == {"q-tea": (1,), "q-rhine": (1,), "q-bees": (1,)}, "the multilingual fallback"

    unrelated = tmp_path / "other.json"
    unrelated.write_text(json.dumps(_squad([("Text.", [("zz", "Question?")])])), encoding="utf-8")
    with pytest.raises(ValueError, match="none of the 1 queries of .*other.json has an id that the dataset judges"):
        load_dataset(german, queries_from=unrelated)
