"""Pairs per second of a reranker: unbatched (batch 1), batched in input order, and batched after
sorting by length (what `CrossEncoderReranker.score` does), side by side, medians over repeats; then
the length buckets: size-only batches (the old batching, ``max_padding=1.0``) against tight buckets
(padding at most 10% of a batch's tokens, the default) and a batch-1 loop, run interleaved so that a
busy machine slows all three alike, with the padding share of each and the ratios of the medians.

    python benchmarks/bench_rerank.py                       # a small random XLM-R built here, offline
    python benchmarks/bench_rerank.py --model PATH_OR_ID    # a real cross-encoder, e.g. a local bge-reranker
    python benchmarks/bench_rerank.py --late-interaction    # add the offline fallback (cold and warm cache)
    python benchmarks/bench_rerank.py --buckets-only --bucket-pairs 20,64 --repeats 9
    python benchmarks/bench_rerank.py --size base ...          # random weights in bge-reranker-base's shape

The backends are timed directly (`load_reranker(...).model.inner`), past the score cache, which would
otherwise answer every repeat from memory.

Passages are XQuAD paragraphs in several languages, read from ../shared/xquad when it is there
(they are never copied into the repository), otherwise generated sentences of mixed length.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search.backends.torch_reranker import (  # noqa: E402
    DEFAULT_MAX_PADDING,
    CrossEncoderReranker,
    length_buckets,
    padding_share,
)
from search.loading import load_reranker  # noqa: E402

XQUAD = ROOT.parent / "shared" / "xquad"
LANGUAGES = ("en", "de", "hi", "zh", "ar")
QUERY = "Which river flows through the city, and where does it end?"
# Random XLM-R shapes: (description, build_tiny_xlmr_cross_encoder keyword arguments).
SIZES = {
    "small": ("random XLM-R, hidden 256, 4 layers", dict(hidden_size=256, num_hidden_layers=4)),
    "base": ("random XLM-R in bge-reranker-base's shape (hidden 768, 12 layers, 12 heads, FFN 3072)",
             dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)),
}


def read_passages(count: int, seed: int) -> list[str]:
    """Paragraphs from XQuAD in LANGUAGES, shuffled, each cut to a random length so lengths vary."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    for language in LANGUAGES:
        path = XQUAD / f"xquad.{language}.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))["data"]
            paragraphs += [p["context"] for article in data for p in article["paragraphs"]]
    if not paragraphs:
        words = "river city bridge flows water north ancient capital trade harbour museum winter".split()
        paragraphs = [" ".join(rng.choice(words) for _ in range(rng.randint(10, 300))) for _ in range(count)]
    rng.shuffle(paragraphs)
    return [p[: rng.randint(80, len(p))] if len(p) > 80 else p for p in paragraphs[:count]]


def unsorted_batches(reranker: CrossEncoderReranker, query: str, passages: Sequence[str], batch_size: int) -> None:
    """Batches in input order, each padded to its longest pair: the baseline that sorting improves on."""
    import torch

    with torch.inference_mode():
        for start in range(0, len(passages), batch_size):
            chunk = list(passages[start:start + batch_size])
            batch = reranker.tokenizer([query] * len(chunk), chunk, truncation="only_second", padding=True,
                                       max_length=reranker.max_length, return_tensors="pt")
            reranker.model(**batch.to(reranker.model.device)).logits.float().cpu()


def pairs_per_second(run: Callable[[], object], pairs: int, repeats: int) -> float:
    run()  # warm-up: first calls pay for allocation and kernel selection
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return pairs / statistics.median(timings)


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per repeat of each run, the runs taking turns (in a rotating order) within every repeat."""
    for run in runs.values():
        run()  # warm-up
    names = list(runs)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            started = time.perf_counter()
            runs[name]()
            timings[name].append(time.perf_counter() - started)
    return timings


def compare_buckets(reranker: CrossEncoderReranker, passages: Sequence[str], repeats: int) -> None:
    """Size-only batches against tight length buckets and a batch-1 loop: padding share, pairs/s, ratios."""
    lengths = [len(ids) for ids in reranker.pair_token_ids(QUERY, passages)]
    size = reranker.batch_size
    variants = {
        "size-only (old)": (size, 1.0),
        f"tight <= {DEFAULT_MAX_PADDING:.0%} (new)": (size, DEFAULT_MAX_PADDING),
        "batch-1 loop": (1, 1.0),
    }
    runs = {name: (lambda b=b, m=m: reranker.score(QUERY, passages, batch_size=b, max_padding=m))
            for name, (b, m) in variants.items()}
    timings = interleaved(runs, repeats)
    old = "size-only (old)"
    print(f"\n{len(passages)} pairs, {sum(lengths)} real tokens, batch size {size}, {repeats} interleaved repeats")
    print(f"{'batching':>22}  {'batches':>7}  {'computed tokens':>15}  {'padding':>7}  {'pairs/s (median)':>16}  "
          f"{'speed vs old: median ratio (min-max)':>36}")
    for name, (batch_size, max_padding) in variants.items():
        batches = length_buckets(lengths, batch_size, max_padding)
        computed = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
        # Old seconds over this variant's, per repeat: the runs of one repeat saw the same machine load.
        ratios = [o / t for o, t in zip(timings[old], timings[name], strict=True)]
        spread = f"{statistics.median(ratios):.3f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"{name:>22}  {len(batches):>7}  {computed:>15}  {padding_share(lengths, batches):>7.1%}  "
              f"{len(passages) / statistics.median(timings[name]):>16.2f}  {spread:>36}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hub id or local folder of a cross-encoder (default: build a small one)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,4,16,32", help="comma-separated (default 1,4,16,32)")
    parser.add_argument("--late-interaction", action="store_true", help="also time the offline fallback")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bucket-pairs", default="20,64",
                        help="comma-separated pair counts for the length-bucket comparison (default 20,64)")
    parser.add_argument("--buckets-only", action="store_true", help="run only the length-bucket comparison")
    parser.add_argument("--size", choices=SIZES, default="small",
                        help="shape of the random model built without --model: small (hidden 256, 4 layers, fast "
                             "but dominated by per-batch overhead) or base (bge-reranker-base: 768, 12 layers)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    bucket_pairs = [int(n) for n in args.bucket_pairs.split(",") if n.strip()]
    passages = read_passages(max([args.pairs, *bucket_pairs]), seed=0)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        if args.model:
            model_id = args.model
        else:
            from tests.tiny_models import build_tiny_xlmr_cross_encoder

            model_id = str(build_tiny_xlmr_cross_encoder(Path(folder) / "random-xlmr", [QUERY, *passages],
                                                         vocab_size=8000, **SIZES[args.size][1]))
        reranker = load_reranker(model_id, args.device, fallback=False).model.inner
        if not isinstance(reranker, CrossEncoderReranker):
            parser.error(f"--model {model_id} is not a cross-encoder")
        all_passages, passages = passages, passages[:args.pairs]
        ids = reranker.pair_token_ids(QUERY, passages)
        lengths = sorted(len(i) for i in ids)
        print(f"model: {model_id if args.model else SIZES[args.size][0]} "
              f"({sum(p.numel() for p in reranker.model.parameters()) / 1e6:.1f} M parameters), "
              f"device {args.device}, torch threads {torch.get_num_threads()}")
        print(f"{len(passages)} pairs, tokens per pair min {lengths[0]} / median {lengths[len(lengths) // 2]} / "
              f"max {lengths[-1]} (window {reranker.max_length}); median of {args.repeats} repeats")
        for count in bucket_pairs:
            compare_buckets(reranker, all_passages[:count], args.repeats)
        if args.buckets_only:
            return
        print(f"\n{'batch size':>10}  {'input order (pairs/s)':>22}  {'sorted by length (pairs/s)':>27}  "
              f"{'speed-up':>8}")
        baseline = None
        for batch_size in batch_sizes:
            plain = pairs_per_second(lambda b=batch_size: unsorted_batches(reranker, QUERY, passages, b),
                                     len(passages), args.repeats)
            ranked = pairs_per_second(lambda b=batch_size: reranker.score(QUERY, passages, batch_size=b),
                                      len(passages), args.repeats)
            baseline = baseline or plain
            print(f"{batch_size:>10}  {plain:>22.1f}  {ranked:>27.1f}  {ranked / baseline:>7.2f}x")
        print("\nspeed-up: sorted batching against the unbatched baseline (batch size 1, input order)")

    if args.late_interaction:
        fallback = load_reranker("late-interaction", args.device).model.inner

        def cold() -> None:
            fallback.clear_cache()
            fallback.score(QUERY, passages)

        cold_rate = pairs_per_second(cold, len(passages), args.repeats)
        warm_rate = pairs_per_second(lambda: fallback.score(QUERY, passages), len(passages), args.repeats)
        print(f"\n{fallback.label}: {cold_rate:.1f} pairs/s with an empty passage cache, "
              f"{warm_rate:.1f} pairs/s with every passage cached")


if __name__ == "__main__":
    main()
