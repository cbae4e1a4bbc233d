"""Dense encoders: speed and fidelity of the encoder backends.

    python benchmarks/bench_dense.py --backends     # torch, onnx, int8 vs SentenceTransformer.encode

`compare_backends`: the bundled all-MiniLM-L6-v2 run by the torch, onnx and int8 backends and by
sentence-transformers' `SentenceTransformer.encode` on the same folder, in interleaved rounds on XQuAD's
English paragraphs (read from ../shared/xquad, never copied into the repository): texts/s, the speed ratio
to encode per round, the largest cosine distance to encode's embeddings, paragraph-retrieval nDCG@10 of
XQuAD's questions, and the memory of each backend loaded in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.interleaved import interleaved, peak_rss_mb, rss_mb, run_probe  # noqa: E402
from search.loading import load_encoder  # noqa: E402
from search.models import FALLBACK_DENSE_ID, bundled_minilm_path  # noqa: E402

XQUAD_EN = ROOT.parent / "shared" / "xquad" / "xquad.en.json"
BACKEND_NAMES = ("torch", "onnx", "int8", "int8-ort")  # int8: OpenVINO static; int8-ort: its ORT fallback
BASELINE = "SentenceTransformer.encode"


def xquad_en() -> tuple[list[str], list[str], list[int]]:
    """XQuAD English paragraphs, questions and each question's paragraph; generated texts without XQuAD."""
    if not XQUAD_EN.exists():
        words = "river city bridge flows water north ancient capital trade harbour museum winter".split()
        paragraphs = [" ".join(words[(i * 7 + j) % len(words)] for j in range(40 + i % 120)) for i in range(240)]
        return paragraphs, [], []
    data = json.loads(XQUAD_EN.read_text(encoding="utf-8"))["data"]
    paragraphs = [p for article in data for p in article["paragraphs"]]
    questions = [(qa["question"], i) for i, p in enumerate(paragraphs) for qa in p["qas"]]
    return [p["context"] for p in paragraphs], [q for q, _ in questions], [i for _, i in questions]


def ndcg_at_10(passage_vectors, question_vectors, gold: list[int]) -> float:
    """Mean nDCG@10 with one relevant paragraph per question: 1 / log2(rank + 1) when it is in the top 10."""
    import numpy as np

    scores = question_vectors @ passage_vectors.T
    total = 0.0
    for row, relevant in zip(scores, gold, strict=True):
        rank = int((row > row[relevant]).sum()) + 1
        total += 1 / math.log2(rank + 1) if rank <= 10 else 0.0
    return total / len(gold) if gold else float(np.nan)


def encoders(names) -> dict:
    from sentence_transformers import SentenceTransformer

    out = {}
    for name in names:
        if name == BASELINE:
            model = SentenceTransformer(str(bundled_minilm_path()), device="cpu")
            out[name] = lambda texts, q=False, m=model: m.encode(texts, batch_size=32, normalize_embeddings=True,
                                                                convert_to_numpy=True, show_progress_bar=False)
        elif name == "int8-ort":  # the int8 backend without openvino/nncf: ONNX Runtime's dynamic int8
            from search.backends.onnx_encoder import OnnxEncoder
            from search.models import FALLBACK_LABEL, model_spec

            encoder = OnnxEncoder(FALLBACK_DENSE_ID, "cpu", model_spec(FALLBACK_DENSE_ID, "dense"), FALLBACK_LABEL,
                                  str(bundled_minilm_path()), precision="int8")
            out[name] = lambda texts, q=False, e=encoder: e.embed(texts, is_query=q, batch_size=32)
        else:
            encoder = load_encoder(FALLBACK_DENSE_ID, "cpu", backend=name)
            out[name] = lambda texts, q=False, e=encoder: e.embed(texts, is_query=q, batch_size=32)
    return out


def probe(name: str) -> None:
    """In a fresh process: load one backend and embed the paragraphs once; print memory as JSON."""
    import onnxruntime  # noqa: F401  (imported first, so the memory counted below is the model's)
    import sentence_transformers  # noqa: F401

    paragraphs, _, _ = xquad_en()
    before = rss_mb()
    started = time.perf_counter()
    embed = encoders([name])[name]
    load_seconds = time.perf_counter() - started
    embed(paragraphs)
    # After one call: safetensors weights are memory-mapped and count once they are read.
    print(json.dumps({"load_s": load_seconds, "loaded_mb": rss_mb() - before, "peak_mb": peak_rss_mb()}))


def compare_backends(rounds: int) -> None:
    """The encoder backends side by side with SentenceTransformer.encode (see the module docstring)."""
    import os

    import numpy as np

    paragraphs, questions, gold = xquad_en()
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as cache:
        env = {"SEARCH_ONNX_CACHE": cache}
        print("exporting (fresh processes, empty cache) ...", flush=True)
        exports = {name: run_probe(script, ["--probe", name], env) for name in ("onnx", "int8", "int8-ort")}
        os.environ["SEARCH_ONNX_CACHE"] = cache
        runs = encoders((BASELINE, *BACKEND_NAMES))
        print(f"{len(paragraphs)} paragraphs; {rounds} interleaved rounds", flush=True)
        timings = interleaved({name: (lambda e=embed: e(paragraphs)) for name, embed in runs.items()},
                              rounds=rounds, baseline=BASELINE)
        reference = runs[BASELINE](paragraphs)
        quality = {}
        for name, embed in runs.items():
            vectors = embed(paragraphs)
            distance = float((1 - (vectors * reference).sum(axis=1)).max())
            score = ndcg_at_10(vectors, embed(questions, True), gold) if questions else float("nan")
            quality[name] = (distance, score)
        print("measuring memory (fresh processes, cache filled) ...", flush=True)
        memory = {name: run_probe(script, ["--probe", name], env) for name in runs}

    base_ndcg = quality["torch"][1]
    print(f"\n| backend | texts/s (median) | speed vs {BASELINE}, median [min-max] | speed vs torch "
          f"| max cosine distance vs encode | nDCG@10 ({len(questions)} questions) | retention vs torch |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: |")
    for name, timing in timings.items():
        distance, score = quality[name]
        label = {"int8": "int8 (OpenVINO static, quantized)",
                 "int8-ort": "int8 (ORT dynamic, quantized)"}.get(name, name)
        retention = f"{score / base_ndcg:.2%}" if not np.isnan(score) else "-"
        print(f"| {label} | {len(paragraphs) / timing.median_seconds:.1f} | {timing.ratio_text()} | "
              f"{timing.ratio_to(timings['torch'])} | {distance:.1e} | {score:.4f} | {retention} |")
    print("\n| step (fresh process) | seconds | peak RSS MB |")
    print("| --- | ---: | ---: |")
    for name, result in exports.items():
        what = {"onnx": "export fp32 + fuse + load", "int8": "export + OpenVINO/NNCF static int8 + load",
                "int8-ort": "ORT dynamic int8 (from the fp32 export) + load"}[name]
        print(f"| {what} | {result['load_s']:.1f} | {result['peak_mb']:.0f} |")
    print("\n| loaded backend | load s (cached) | RSS after load + one call, MB above imports | peak RSS MB |")
    print("| --- | ---: | ---: | ---: |")
    for name, result in memory.items():
        print(f"| {name} | {result['load_s']:.1f} | {result['loaded_mb']:.0f} | {result['peak_mb']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", action="store_true", help="compare the encoder backends (the default)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # one backend in a fresh process, for memory
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
        return
    compare_backends(args.rounds)


if __name__ == "__main__":
    main()
