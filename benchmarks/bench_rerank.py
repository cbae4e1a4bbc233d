"""Pairs per second of a reranker: unbatched (batch 1), batched in input order, and batched after
sorting by length (what `CrossEncoderReranker.score` does), side by side, medians over repeats.

    python benchmarks/bench_rerank.py                       # a small random XLM-R built here, offline
    python benchmarks/bench_rerank.py --model PATH_OR_ID    # a real cross-encoder, e.g. a local bge-reranker
    python benchmarks/bench_rerank.py --late-interaction    # add the offline fallback (cold and warm cache)

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

from search.backends.torch_reranker import CrossEncoderReranker  # noqa: E402
from search.loading import load_reranker  # noqa: E402

XQUAD = ROOT.parent / "shared" / "xquad"
LANGUAGES = ("en", "de", "hi", "zh", "ar")
QUERY = "Which river flows through the city, and where does it end?"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hub id or local folder of a cross-encoder (default: build a small one)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,4,16,32", help="comma-separated (default 1,4,16,32)")
    parser.add_argument("--late-interaction", action="store_true", help="also time the offline fallback")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    passages = read_passages(args.pairs, seed=0)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        if args.model:
            model_id = args.model
        else:
            from tests.tiny_models import build_tiny_xlmr_cross_encoder

            model_id = str(build_tiny_xlmr_cross_encoder(Path(folder) / "small-xlmr", [QUERY, *passages],
                                                         hidden_size=256, num_hidden_layers=4, vocab_size=8000))
        reranker = load_reranker(model_id, args.device, fallback=False).model
        if not isinstance(reranker, CrossEncoderReranker):
            parser.error(f"--model {model_id} is not a cross-encoder")
        ids = reranker.pair_token_ids(QUERY, passages)
        lengths = sorted(len(i) for i in ids)
        print(f"model: {model_id if args.model else 'random XLM-R, hidden 256, 4 layers'} "
              f"({sum(p.numel() for p in reranker.model.parameters()) / 1e6:.1f} M parameters), "
              f"device {args.device}, torch threads {torch.get_num_threads()}")
        print(f"{len(passages)} pairs, tokens per pair min {lengths[0]} / median {lengths[len(lengths) // 2]} / "
              f"max {lengths[-1]} (window {reranker.max_length}); median of {args.repeats} repeats\n")
        print(f"{'batch size':>10}  {'input order (pairs/s)':>22}  {'sorted by length (pairs/s)':>27}  {'speed-up':>8}")
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
        fallback = load_reranker("late-interaction", args.device).model

        def cold() -> None:
            fallback.clear_cache()
            fallback.score(QUERY, passages)

        cold_rate = pairs_per_second(cold, len(passages), args.repeats)
        warm_rate = pairs_per_second(lambda: fallback.score(QUERY, passages), len(passages), args.repeats)
        print(f"\n{fallback.label}: {cold_rate:.1f} pairs/s with an empty passage cache, "
              f"{warm_rate:.1f} pairs/s with every passage cached")


if __name__ == "__main__":
    main()
