"""Command line: `python -m search index|query|eval|rerank|explain|serve|prepare ...`.

Progress and messages go to stderr; with --json, stdout carries exactly one JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import config
from .answerability import score_line
from .compare import Agreement, RerankedHit, compare
from .config import LineSetting
from .export import result_to_dict
from .models import AUTO_RERANKER
from .stages import FIRST_STAGES, RERANK, check_stages, is_rerank
from .stages import stage as stage_info
from .types import SearchResult


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (0 ok, 2 bad input)."""
    try:
        parser = _parser()  # reads the configuration: a bad environment variable stops here, named
    except config.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries(args.verbose)
    try:
        return args.run(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from .loading import BACKENDS

    defaults = config.current()
    models = argparse.ArgumentParser(add_help=False)
    _config_flags(models, "models", defaults)
    models.add_argument("--reranker-model", action="append", metavar="MODEL[@BACKEND]",
                        help="a reranker: a Hub id, a local folder, 'auto' or 'late-interaction'; repeat it (or "
                             "comma-separate) for several, each a stage of its own (rerank, rerank-b, …), "
                             "MODEL@BACKEND running one on another backend (env SEARCH_RERANKER_MODEL; "
                             f"default {_rerankers_text(defaults.rerankers)})")
    models.add_argument("-v", "--verbose", action="store_true", help="log what is loaded and why")

    corpus = argparse.ArgumentParser(add_help=False)
    _config_flags(corpus, "corpus", defaults)
    corpus.add_argument("--text-column", help="the CSV/TSV column that holds the text, when not found by name")
    corpus.add_argument("--cache-dir", type=Path, help=f"where built indexes are kept and reused "
                                                        f"(env SEARCH_CACHE_DIR; default {defaults.cache_dir})")
    corpus.add_argument("--no-cache", action="store_true", help="build from scratch and keep nothing")
    corpus.add_argument("--max-passages", type=int, default=0,
                        help="refuse a corpus with more passages than this (default 0: no limit; the app's limit "
                             "is SEARCH_MAX_PASSAGES)")

    ranking = argparse.ArgumentParser(add_help=False)
    _config_flags(ranking, "view", defaults)
    ranking.add_argument("--compare-reranker-model", help="another reranker after the first (as a second "
                         "--reranker-model): its stage is compared with the first (shared@k, Jaccard@k, Kendall's tau)")
    ranking.add_argument("--compare-backend", choices=BACKENDS, help="what runs --compare-reranker-model "
                                                                     "(default: --backend)")
    ranking.add_argument("--json", action="store_true", help="print one JSON document on stdout")

    parser = argparse.ArgumentParser(prog="python -m search", description=(
        "Multilingual retrieve-and-rerank explorer: BM25, dense (FAISS), hybrid (their fusion) and cross-encoder "
        "reranking over a corpus in any mix of languages."))
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", parents=[models, corpus], help="build an index from files and save it")
    index.add_argument("paths", nargs="+", type=Path, help="files, folders or zip archives")
    index.add_argument("--out", type=Path, required=True, help="folder to save the index in")
    index.set_defaults(run=_index)

    query = commands.add_parser("query", parents=[models, corpus, ranking], help="search a corpus or a saved index")
    query.add_argument("paths", nargs="*", type=Path, help="files, folders or zip archives (or use --index)")
    query.add_argument("--index", type=Path, help="a folder written by `index --out`")
    query.add_argument("--query", required=True, help="the query text")
    query.set_defaults(run=_query)

    evaluate = commands.add_parser("eval", parents=[models, corpus, ranking],
                                   help="metrics per stage on a SQuAD JSON file or a BEIR folder")
    evaluate.add_argument("dataset", type=Path, help="SQuAD-format .json, or a folder with corpus.jsonl, "
                                                     "queries.jsonl and qrels/test.tsv (or qrels.trec)")
    evaluate.add_argument("--stages", help=f"comma-separated, from {','.join(FIRST_STAGES)},{RERANK} and one "
                                           f"rerank-b, rerank-c… per further reranker (default: every stage)")
    evaluate.add_argument("--max-queries", type=int, help="evaluate only the first N judged queries")
    evaluate.add_argument("--queries-from", type=Path, help="ask the questions of this dataset (same query ids, "
                                                            "e.g. another language of XQuAD) instead of DATASET's")
    evaluate.set_defaults(run=_eval)

    rerank = commands.add_parser("rerank", parents=[models], help="score query-passage pairs with a reranker")
    rerank.add_argument("--model", help="Hub id or local folder (default: --reranker-model / env / auto)")
    rerank.add_argument("--query", required=True)
    rerank.add_argument("--passages", type=Path, required=True,
                        help="a JSON list of strings, or a text file with one passage per line")
    rerank.add_argument("--json", action="store_true", help="print a JSON list in input order")
    rerank.set_defaults(run=_rerank)

    explain = commands.add_parser("explain", parents=[models], help="why a passage scored so: its score with "
                                  "each sentence (or window) left out in turn")
    explain.add_argument("--model", help="Hub id or local folder (default: --reranker-model / env / auto)")
    explain.add_argument("--query", required=True)
    explain.add_argument("--passage", type=Path, required=True,
                         help="a text file holding the passage (spans in the output index its text with surrounding "
                              "whitespace stripped, the JSON's \"passage\")")
    explain.add_argument("--title", default="", help="the passage's title, scored in front of it as the index does")
    explain.add_argument("--json", action="store_true", help="print the spans, scores and drops as one JSON document")
    explain.set_defaults(run=_explain)

    # Defaults are search.serve's (ServeLimits, DEFAULT_HOST/PORT), not imported here: it loads FastAPI.
    serve = commands.add_parser("serve", parents=[models], help="serve the models with TEI's HTTP API "
                                "(/rerank, /embed, /v1/embeddings, /info, /health, ...; see docs/tei.md)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--no-reranker", action="store_true", help="serve the dense encoder only")
    serve.add_argument("--no-dense", action="store_true", help="serve the reranker only")
    serve.add_argument("--max-client-batch-size", type=int, help="texts one request may send (default 32)")
    serve.add_argument("--max-input-tokens", type=int, help="tokens one input may have with truncation off "
                                                            "(default: each model's window)")
    serve.add_argument("--payload-limit", type=int, help="bytes one request body may have (default 2000000)")
    serve.add_argument("--max-concurrent-requests", type=int,
                       help="inputs (texts, pairs) answered at once before 429, as TEI counts (default 512)")
    serve.add_argument("--header-timeout", type=float, help="seconds a client may take to send a request's "
                                                            "headers before it is disconnected (default 10)")
    serve.add_argument("--body-timeout", type=float, help="seconds a client may take to send a request's body "
                                                          "before it gets 408 (default 30)")
    serve.add_argument("--keep-alive-timeout", type=float, help="seconds an idle connection is kept (default 5)")
    serve.add_argument("--no-auto-truncate", action="store_true",
                       help="refuse over-long inputs unless the request asks for truncation")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (env SEARCH_SERVE_API_KEY)")
    serve.set_defaults(run=_serve)

    prepare = commands.add_parser("prepare", parents=[models], help="make the models' onnx or int8 forms ahead of "
                                  "time (a Docker image or a Space's build step), so the app never prepares them")
    _config_flags(prepare, "operator", defaults)
    prepare.add_argument("--no-dense", action="store_true", help="prepare the reranker(s) only")
    prepare.add_argument("--no-reranker", action="store_true", help="prepare the dense encoder only")
    prepare.add_argument("--json", action="store_true", help="print what was prepared as one JSON document")
    prepare.set_defaults(run=_prepare)
    return parser


# -- commands -----------------------------------------------------------------------------------------

def _index(args: argparse.Namespace) -> int:

    index = _build(args, args.paths, _settings(args))
    index.save(args.out)
    _print_build_report(index.report, stream=sys.stdout)
    print(f"saved to {args.out}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from .pipeline import Index
    from .policy import check_query

    if bool(args.paths) == bool(args.index):
        raise ValueError("give either corpus PATHs or --index DIR (one of them)")
    args.query = check_query(args.query)
    if args.index:
        index = Index.load(args.index, overrides=_settings(args))
    else:
        index = _build(args, args.paths, _settings(args))
        _print_build_report(index.report, stream=sys.stderr)
    result = index.search(args.query, k=args.k, rerank_depth=args.rerank_depth,
                          candidates_from=args.candidates_from)
    if args.json:
        print(json.dumps(result_to_dict(result, args.k, score_line=args.score_line), ensure_ascii=False, indent=1))
    else:
        _print_result(result, args.k, args.score_line)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .datasets import load_dataset
    from .evaluation import evaluate

    settings = _settings(args)
    stages = ([stage.strip() for stage in args.stages.split(",") if stage.strip()] if args.stages
              else [*FIRST_STAGES, *settings.rerank_stages])
    check_stages(stages, len(settings.rerankers))
    for name in [stage for stage in stages if is_rerank(stage)]:
        if args.rerank_depth == 0:
            stages.remove(name)  # --rerank-depth 0 turns reranking off
            print(f"note: --rerank-depth 0: the {name} stage is left out", file=sys.stderr)
    dataset = load_dataset(args.dataset, queries_from=args.queries_from)
    for problem in dataset.judgments.problems:
        print(f"warning: {problem}", file=sys.stderr)
    index = _build(args, dataset.corpus, settings)
    _print_build_report(index.report, stream=sys.stderr)
    report = evaluate(index, dataset.judgments, stages=stages, k=args.k, rerank_depth=args.rerank_depth,
                      candidates_from=args.candidates_from, max_queries=args.max_queries,
                      progress=_progress_printer("queries"))
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return 0
    print(f"{dataset.name}: {report.passages} passages, {report.queries} queries, judged by {report.level} "
          f"({report.matched_ids} of {report.judged_ids} judged ids are in the corpus)")
    print("languages: " + ", ".join(f"{lang} {count}" for lang, count in report.languages.items()))
    print("query languages: " + ", ".join(f"{lang} {count}" for lang, count in report.query_languages.items()))
    names = list(next(iter(report.stages.values()), {}))
    print(f"{'stage':<9}" + "".join(f"{name:>12}" for name in names) + f"{'ms/query':>10}  model")
    for stage, metrics in report.stages.items():
        mean = report.timings_s.get(f"{stage}_mean_query", 0.0) * 1000
        print(f"{stage:<9}" + "".join(f"{metrics[name]:>12.4f}" for name in names)
              + f"{mean:>10.1f}  {report.models.get(stage, '')}")
    for name in report.stages:
        if f"{name}_pairs_per_second" in report.timings_s:
            print(f"reranker {stage_info(name).letter} ({name}): {report.timings_s[f'{name}_pairs_per_second']:.1f} "
                  "pairs/s")
    for name, mean in report.agreements.items():
        tau = "n/a" if mean.kendall_tau is None else f"{mean.kendall_tau:.2f}"
        print(f"agreement A vs {stage_info(name).letter} ({RERANK}, {name}), mean of {mean.queries} queries: "
              f"{mean.shared:.1f} shared@{mean.k}, Jaccard@{mean.k} {mean.jaccard:.2f}, Kendall's tau {tau}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _rerank(args: argparse.Namespace) -> int:
    from .loading import load_reranker

    passages = _read_passages_file(args.passages)
    settings = _settings(args)
    model_id = _resolved_reranker(args.model or settings.rerankers[0].model, args.device, [args.query, *passages])
    loaded = load_reranker(model_id, args.device, backend=settings.backend, endpoint=settings.tei_url or None)
    if loaded.fallback_reason:
        print(f"note: {loaded.fallback_reason}", file=sys.stderr)
    print(f"reranker: {loaded.model.label}", file=sys.stderr)
    scores = loaded.model.score(args.query, passages)
    rows = [{"index": i, "raw": s.raw, "sigmoid": s.sigmoid, "truncated": s.truncated}
            for i, s in enumerate(scores)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in sorted(rows, key=lambda r: -r["raw"]):
        sigmoid = "" if row["sigmoid"] is None else f"  sigmoid {row['sigmoid']:.4f}"
        cut = "  (truncated)" if row["truncated"] else ""
        print(f"#{row['index']:<4} raw {row['raw']:>9.4f}{sigmoid}{cut}  {_snippet(passages[row['index']])}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain, explain_cost

    passage = args.passage.read_text(encoding="utf-8-sig").strip()
    if not passage:
        raise ValueError(f"{args.passage} holds no text; put the passage to explain in it")
    reranker = _load_command_reranker(args, [args.query, passage])
    cost = explain_cost(reranker, args.query, passage, title=args.title)
    time = "" if cost.seconds is None else f", about {cost.seconds:.1f} s"
    print(f"explaining: {cost.parts} {cost.kind}(s), {cost.pairs} pair(s) to score{time}", file=sys.stderr)
    explanation = explain(reranker, args.query, passage, title=args.title, progress=_progress_printer("pairs"))
    if args.json:
        print(json.dumps(explanation.to_dict(), ensure_ascii=False, indent=1))
        return 0
    sigmoid = "" if explanation.sigmoid is None else f"  sigmoid {explanation.sigmoid:.4f}"
    print(f"score {explanation.score:.4f}{sigmoid}  ({explanation.model})")
    print(f"drop = score - score without the {explanation.kind}; █ the {explanation.kind} raised the score, "
          "░ it lowered it")
    for part, bar in zip(explanation.parts, _bars([part.drop for part in explanation.parts]), strict=True):
        print(f"{part.drop:>+9.4f} {bar:<20} [{part.start}:{part.end}] {_snippet(part.text, 80)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serve import ServeLimits, TEIService, serve

    given = {name: getattr(args, name) for name in ("max_client_batch_size", "max_input_tokens", "payload_limit",
                                                     "max_concurrent_requests") if getattr(args, name) is not None}
    timeouts = {"header_timeout_s": args.header_timeout, "body_timeout_s": args.body_timeout,
                "keep_alive_s": args.keep_alive_timeout}
    given |= {name: value for name, value in timeouts.items() if value is not None}
    limits = ServeLimits(**given, auto_truncate=not args.no_auto_truncate)
    service = TEIService.from_settings(_settings(args), reranker=not args.no_reranker, dense=not args.no_dense,
                                       limits=limits, api_key=args.api_key or config.current().serve_api_key or None)
    print("loading the models...", file=sys.stderr)
    served = service.ensure_loaded()
    for kind, loaded in (("reranker", served.reranker), ("dense", served.encoder)):
        if loaded is not None:
            note = f" (fallback: {loaded.fallback_reason})" if loaded.fallback_reason else ""
            print(f"{kind}: {loaded.model.label}{note}", file=sys.stderr)
    print(f"serving TEI's API on http://{args.host}:{args.port} (Ctrl+C stops)", file=sys.stderr)
    serve(service, args.host, args.port, log_level="info" if args.verbose else "warning")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    """Load each model for the backend as the app would (``auto`` included; a fallback as the app's), which
    makes every form not in the export cache yet; say what was made, how long it took and where it is."""
    import time

    from .backends.runtime.onnx_export import onnx_cache_dir
    from .loading import REMOTE_BACKENDS
    from .models import choose_reranker

    settings = _settings(args)
    if settings.backend in REMOTE_BACKENDS:
        raise ValueError(f"--backend {settings.backend} runs the models elsewhere: there is nothing to prepare here; "
                         "use --backend auto, onnx or int8")
    jobs = [] if args.no_dense else [("dense", settings.dense_model, settings.backend)]
    if not args.no_reranker:
        jobs += [("reranker", choose_reranker(choice.model), choice.backend or settings.backend)
                 for choice in settings.rerankers]
    overrides = {"onnx_cache": Path(args.onnx_cache).expanduser()} if args.onnx_cache else {}
    with config.overridden(**overrides):
        cache = onnx_cache_dir()
        started = time.perf_counter()
        rows = [_prepare_model(role, model_id, backend, settings.device, cache) for role, model_id, backend in jobs]
        total = time.perf_counter() - started
    made = [entry for row in rows for entry in row["made"]]
    if args.json:
        print(json.dumps({"cache": str(cache), "seconds": round(total, 1), "models": rows}, ensure_ascii=False))
        return 0
    for row in rows:
        what = (f"made {len(row['made'])} form(s) in {row['seconds']:.1f} s" if row["made"]
                else f"already prepared (loaded in {row['seconds']:.1f} s)")
        print(f"{row['role']}: {row['label']}: {what}")
        for entry in row["made"]:
            print(f"  {entry['entry']} ({entry['seconds']} s)")
    print(f"{len(made)} form(s) made in {total:.1f} s; cache: {cache}")
    return 0


def _prepare_model(role: str, model_id: str, backend: str, device: str | None, cache: Path) -> dict:
    """Load one model of `prepare` (making what its backend needs) and say what it made in `cache`."""
    import time

    from .backends.runtime.onnx_export import cache_entries
    from .loading import load_dense_encoder, load_reranker

    print(f"preparing the {role} model {model_id} for backend {backend} ...", file=sys.stderr, flush=True)
    known = set(cache_entries(cache))
    began = time.perf_counter()
    load = load_dense_encoder if role == "dense" else load_reranker
    loaded = load(model_id, device, backend=backend)
    seconds = time.perf_counter() - began
    if loaded.fallback_reason:
        print(f"note: {loaded.fallback_reason}", file=sys.stderr)
    made = [{"entry": str(folder), "seconds": meta.get("seconds")}
            for folder, meta in cache_entries(cache).items() if folder not in known]
    return {"role": role, "requested": model_id, "backend": loaded.model.backend,
            "label": loaded.model.label, "fallback_reason": loaded.fallback_reason, "seconds": round(seconds, 1),
            "made": made}


# -- helpers ------------------------------------------------------------------------------------------

def _config_flags(parser: argparse.ArgumentParser, group: str, defaults: config.Config) -> None:
    """Add a flag for every setting of the configuration table in `group` that has one, with its doc, its
    environment variable and the default in force (the environment's, else the built-in one)."""
    for option in config.OPTIONS:
        if option.group != group or option.flag is None or option.kind == "rerankers":
            continue  # the rerankers' flag repeats: it is added by hand
        help_text = f"{option.doc} (env {option.env}; default {getattr(defaults, option.name)})"
        if option.kind == "bool":
            parser.add_argument(option.flag, dest=option.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
            continue
        kind = {"int": int, "float": float, "line": _typed(option)}.get(option.kind, str)
        parser.add_argument(option.flag, dest=option.name, type=kind, choices=option.choices or None, help=help_text)


def _typed(option: config.Option):
    """An argparse type that reads a flag as the configuration reads its variable (the same message)."""
    def read(raw: str):
        try:
            return option.parse(raw)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{raw!r}: {error}") from None
    read.__name__ = option.kind
    return read


def _rerankers_text(rerankers) -> str:
    return ", ".join(f"{model}@{backend}" if backend else model for model, backend in
                     ((item.model, item.backend) if hasattr(item, "model") else item for item in rerankers))


def _settings(args: argparse.Namespace):
    """The settings of a command: the configuration (the environment at start-up), then its flags.
    Flags of the view (k, rerank depth, …) get the configuration's defaults here, and are checked against
    the table's ranges only in the app, where sliders offer them; the engine checks its own bounds."""
    from .pipeline import RerankerChoice, Settings

    for option in config.OPTIONS:
        if option.group == "view" and option.flag and getattr(args, option.name, None) is None:
            setattr(args, option.name, getattr(config.current(), option.name))
    rerankers = None
    named = [item for value in (getattr(args, "reranker_model", None) or []) for item in value.split(",")
             if item.strip()]
    if named:
        rerankers = [RerankerChoice(*(part.strip() for part in item.split("@", 1))) for item in named]
    if getattr(args, "compare_reranker_model", None):
        rerankers = [*(rerankers or [RerankerChoice(*item) if isinstance(item, tuple) else item
                                     for item in config.current().rerankers]),
                     RerankerChoice(args.compare_reranker_model, args.compare_backend or "")]
    flags = {option.name: getattr(args, option.name, None) for option in config.OPTIONS
             if option.group in ("models", "corpus") and option.flag and option.kind != "rerankers"}
    return Settings.from_config(rerankers=rerankers, text_column=getattr(args, "text_column", None), **flags)


ESTIMATE_FROM_PASSAGES = 64  # a smaller corpus embeds in moments: no estimate is worth measuring for it


def _build(args: argparse.Namespace, source, settings):
    """Read and split `source`, say on stderr what embedding it will take on this machine (for a corpus of
    more than ESTIMATE_FROM_PASSAGES passages), then build it (the CLI asks nothing: it goes on)."""
    from . import pipeline
    from .estimates import about

    prepared = pipeline.prepare(source, settings, max_passages=args.max_passages or None)
    if len(prepared.passages) > ESTIMATE_FROM_PASSAGES:
        expected = pipeline.estimate(prepared)
        time = about(expected.seconds) if expected.seconds is not None else "a time not measured yet"
        print(f"embedding {expected.passages:,} passages with {expected.encoder}: {time} on this machine "
              "(unless a saved index is reused)", file=sys.stderr)
    return pipeline.build(prepared, progress=_progress_printer(), cache_dir=_cache_dir(args))


def _cache_dir(args: argparse.Namespace) -> Path | None:
    from .pipeline import default_cache_dir

    if args.no_cache:
        return None
    return args.cache_dir or default_cache_dir()


def _resolved_reranker(model_id: str, device: str | None, texts: Sequence[str]) -> str:
    """`model_id`, with ``auto`` chosen from the languages of `texts` (`models.choose_reranker`)."""
    if model_id.strip() != AUTO_RERANKER:
        return model_id.strip()
    from .language import detect_languages
    from .models import choose_device, choose_reranker

    groups = {language.group for language in detect_languages(list(texts))}
    return choose_reranker(model_id, groups, has_gpu=choose_device(device).startswith("cuda"))


def _load_command_reranker(args: argparse.Namespace, texts: Sequence[str]):
    """The reranker of `explain`: --model, else the settings' reranker (``auto`` chosen from `texts`)."""
    from .loading import load_reranker

    settings = _settings(args)
    model_id = _resolved_reranker(args.model or settings.rerankers[0].model, args.device, texts)
    loaded = load_reranker(model_id, args.device, backend=settings.backend, endpoint=settings.tei_url or None)
    if loaded.fallback_reason:
        print(f"note: {loaded.fallback_reason}", file=sys.stderr)
    print(f"reranker: {loaded.model.label}", file=sys.stderr)
    return loaded.model


def _bars(drops: Sequence[float], width: int = 20) -> list[str]:
    """One bar per drop: █ for a drop (the part raised the score), ░ for a rise, as long as the drop
    relative to the largest in absolute value.

    >>> _bars([2.0, -1.0, 0.0], width=4)
    ['████', '░░', '']
    """
    largest = max((abs(drop) for drop in drops), default=0.0)
    if largest <= 0:
        return ["" for _ in drops]
    return [("█" if drop > 0 else "░") * round(width * abs(drop) / largest) for drop in drops]


def _read_passages_file(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        try:
            passages = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from error
        if not isinstance(passages, list) or not all(isinstance(p, str) for p in passages):
            raise ValueError(f"{path} must hold a JSON list of strings")
    else:
        passages = [line for line in text.splitlines() if line.strip()]
    if not passages:
        raise ValueError(f"{path} holds no passage")
    return passages


def _progress_printer(unit: str = ""):
    last: dict[str, int] = {}

    def report(*event: object) -> None:
        step, done, total = (unit, *event) if len(event) == 2 else event
        percent = int(100 * int(done) / max(int(total), 1))
        if last.get(str(step)) != percent and (percent % 10 == 0 or done == total):
            last[str(step)] = percent
            print(f"  {step}: {done}/{total}", file=sys.stderr)

    return report


def _print_build_report(report, stream) -> None:
    reused = " (reused the saved index)" if report.reused else ""
    print(f"{report.documents} documents, {report.passages} passages from {report.files_read} file(s){reused}",
          file=stream)
    if report.problems:
        skipped = sum(problem.skipped for problem in report.problems)
        print(f"{skipped} skipped (a file, row, line or page) and {len(report.problems) - skipped} warning(s), "
              "each listed with its reason on stderr", file=stream)
    print("languages: " + ", ".join(f"{lang} {count}" for lang, count in report.languages.items()), file=stream)
    print(f"dense model: {report.dense_model} on {report.device}", file=stream)
    if report.dense_fallback_reason:
        print(f"note: {report.dense_fallback_reason}", file=stream)
    timings = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in report.timings_s.items())
    if timings:
        print(f"time: {timings}", file=stream)
    for problem in report.problems:
        print(f"{'skipped' if problem.skipped else 'warning'}: {problem}", file=sys.stderr)


def _print_result(result: SearchResult, k: int, line_setting: LineSetting = "default") -> None:
    comparison = compare(result, k)
    reranked = {name: {hit.passage_id: hit for hit in hits} for name, hits in comparison.reranked.items()}
    print(f"query language: {result.query_language.group} ({result.query_language.probability:.2f})")
    for name, stage_result in result.stages.items():
        header = f"== {name}: {stage_result.model} ({stage_result.seconds * 1000:.0f} ms"
        if stage_result.pairs_per_second:
            header += f", {stage_result.pairs_per_second:.1f} pairs/s"
        print(header + ")")
        if stage_result.note:
            print(f"   note: {stage_result.note}")
        if stage_result.error:
            print(f"   could not run: {stage_result.error}")
        line = score_line(stage_result, line_setting, hits=stage_result.hits[:k]) if is_rerank(name) else None
        if line is not None:
            print(f"   {line.describe()}: " + (f"{line.reached} of {line.listed} reach it" if line.reached
                                              else "no passage reaches it, so maybe no good answer here"))
        for position, hit in enumerate(stage_result.hits[:k]):
            if line is not None and position == line.reached and 0 < position:
                print(f"   {'-' * 20} {line.describe()}")
            others = " ".join(f"{other}#{rank}" if rank else f"{other}:-" for other, rank in hit.ranks.items())
            print(f"{hit.rank:>3}. {hit.score:>9.4f} [{hit.language.group}] {hit.passage_id}  ({others})")
            if hit.passage_id in reranked.get(name, {}):
                print(f"      {_describe(reranked[name][hit.passage_id], k)}")
            print(f"      {_snippet(hit.text)}")
    for pair in comparison.overlaps:
        print(f"overlap {pair.first}-{pair.second}: {pair.shared} shared@{k}, Jaccard@{k} {pair.jaccard:.2f}")
    for agreement in comparison.agreements:
        print(_describe_agreement(agreement))


def _describe(reranked: RerankedHit, k: int) -> str:
    found = " and ".join(stage_info(name).short for name in reranked.found_by) or f"neither retriever in top-{k}"
    source = reranked.movements[0] if reranked.movements else None  # the stage that fed the reranker
    lifted = f" · lifted from {stage_info(source.against).short} #{source.before}" if reranked.lifted and source else ""
    versus = f"{reranked.versus_a.text} · " if reranked.versus_a is not None else ""
    return versus + " · ".join(move.text for move in reranked.movements) + f" · found by {found}{lifted}"


def _describe_agreement(agreement: Agreement) -> str:
    tau = "n/a" if agreement.kendall_tau is None else f"{agreement.kendall_tau:.2f}"
    first, second = stage_info(agreement.first).letter, stage_info(agreement.second).letter
    return (f"agreement {first} vs {second} ({agreement.first}, {agreement.second}): {agreement.shared} "
            f"shared@{agreement.k}, Jaccard@{agreement.k} {agreement.jaccard:.2f}, Kendall's tau {tau} over "
            f"{agreement.candidates} candidates")


def _snippet(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _quiet_libraries(verbose: bool) -> None:
    if verbose:
        return
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    except ImportError:
        pass
