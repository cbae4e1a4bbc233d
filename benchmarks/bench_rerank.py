"""Pairs per second of a reranker: unbatched (batch 1), batched in input order, and batched after
sorting by length (what `CrossEncoderReranker.score` does), side by side, medians over repeats; and,
with --backends, the torch, onnx and int8 backends against sentence-transformers' CrossEncoder.predict.

    python benchmarks/bench_rerank.py                       # a small random XLM-R built here, offline
    python benchmarks/bench_rerank.py --model PATH_OR_ID    # a real cross-encoder, e.g. a local bge-reranker
    python benchmarks/bench_rerank.py --late-interaction    # add the offline fallback (cold and warm cache)
    python benchmarks/bench_rerank.py --backends            # backends on a random bge-reranker-base-shaped
                                                            # model (12 x 768, 250k vocabulary): speed,
                                                            # score differences, export and memory
    python benchmarks/bench_rerank.py --backends --shape m3 --pairs 100 --rounds 1 --only onnx,int8 \
        --work /tmp/bench                                   # bge-reranker-v2-m3's shape (24 x 1024), the model
                                                            # and exports kept in /tmp/bench for the next run
    python benchmarks/bench_rerank.py --backends --only onnx,ov-fp32 --pairs 40 --rounds 3 --fresh --languages de
                                                            # the issue's check: 40 German paragraphs, other
                                                            # pairs every round; ov-fp32: the exact OpenVINO
                                                            # fp32 form (not a backend; measured for the choice)
    python benchmarks/bench_rerank.py --backends --only onnx,onnx-unfused --no-memory
                                                            # onnx-unfused: the fp32 export without ONNX Runtime's
                                                            # Python fusions (measured for the choice)
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_rerank.py --backends ...
                                                            # torch and OpenVINO limited to AVX2 kernels
                                                            # (ONNX Runtime has no such switch)

The int8 backend is OpenVINO static int8 when openvino and nncf are installed; ``int8-ort`` in --only is
ONNX Runtime's dynamic int8 (the fallback without them).

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

from benchmarks.interleaved import interleaved, peak_rss_mb, rss_mb, run_probe  # noqa: E402
from search.backends.runtime.onnx_export import weights_key  # noqa: E402
from search.backends.torch_reranker import CrossEncoderReranker  # noqa: E402
from search.loading import load_reranker  # noqa: E402

XQUAD = ROOT.parent / "shared" / "xquad"
LANGUAGES = ("en", "de", "hi", "zh", "ar")
QUERY = "Which river flows through the city, and where does it end?"


def read_passages(count: int, seed: int, languages: Sequence[str] = LANGUAGES, *, cut: bool = True) -> list[str]:
    """Paragraphs from XQuAD in `languages`, shuffled, each cut to a random length so lengths vary (unless
    not `cut`)."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    for language in languages:
        path = XQUAD / f"xquad.{language}.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))["data"]
            paragraphs += [p["context"] for article in data for p in article["paragraphs"]]
    if not paragraphs:
        words = "river city bridge flows water north ancient capital trade harbour museum winter".split()
        paragraphs = [" ".join(rng.choice(words) for _ in range(rng.randint(10, 300))) for _ in range(count)]
    rng.shuffle(paragraphs)
    return [p[: rng.randint(80, len(p))] if len(p) > 80 and cut else p for p in paragraphs[:count]]


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


BASE_SHAPE = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                  max_position_embeddings=514, vocab_size=250002, type_vocab_size=1)
M3_SHAPE = dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096,
                max_position_embeddings=8194, vocab_size=250002, type_vocab_size=1)
SHAPES = {"base": BASE_SHAPE, "m3": M3_SHAPE}
BACKEND_NAMES = ("torch", "onnx", "int8", "int8-ort")
EXTRA_NAMES = ("ov-fp32", "onnx-unfused")  # measured for a choice, not backends
BASELINE = "CrossEncoder.predict"


def build_base_shaped(folder: Path, corpus: Sequence[str], shape: str = "base") -> Path:
    """A random XLMRobertaForSequenceClassification of bge-reranker-base's shape (278 M parameters; or
    v2-m3's, 568 M, with `shape` "m3") with a small tokenizer trained on `corpus` (only the token counts
    matter for speed)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    from tests.tiny_models import train_xlmr_tokenizer

    tokenizer = train_xlmr_tokenizer(corpus, vocab_size=6000, model_max_length=512)
    config = XLMRobertaConfig(num_labels=1, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, layer_norm_eps=1e-5,
                              architectures=["XLMRobertaForSequenceClassification"], **SHAPES[shape])
    torch.manual_seed(0)
    XLMRobertaForSequenceClassification(config).eval().save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def probe(args: argparse.Namespace) -> None:
    """In a fresh process: load one backend (exporting it when the cache is empty), score the pairs once,
    print memory and seconds as JSON (what `run_probe` reads)."""
    import onnxruntime  # noqa: F401  (imported first, so the memory counted below is the model's)
    import transformers  # noqa: F401
    from sentence_transformers import CrossEncoder

    passages = read_passages(args.pairs, seed=0, languages=args.languages.split(","))
    before = rss_mb()
    started = time.perf_counter()
    if args.probe == BASELINE:
        model = CrossEncoder(args.model, device="cpu")
        score = lambda: model.predict([(QUERY, p) for p in passages], batch_size=16, show_progress_bar=False)  # noqa: E731
    else:
        reranker = _load(args.model, args.probe)
        score = lambda: reranker.score(QUERY, passages)  # noqa: E731
    load_seconds = time.perf_counter() - started
    score()
    # After one call: safetensors weights are memory-mapped and count once they are read.
    print(json.dumps({"load_s": load_seconds, "imports_mb": before, "loaded_mb": rss_mb() - before,
                      "peak_mb": peak_rss_mb()}))


def _load(folder: str, name: str):
    if name == "ov-fp32":
        return _openvino_fp32(folder)
    if name == "onnx-unfused":
        return _onnx_unfused(folder)
    if name == "int8-ort":  # the int8 backend's fallback without openvino/nncf
        from search.backends.onnx_reranker import OnnxReranker

        return OnnxReranker(folder, precision="int8")
    return load_reranker(folder, "cpu", fallback=False, backend=name).model.inner


def _openvino_fp32(folder: str):
    """The onnx backend's reranker with OpenVINO running the unfused fp32 export instead of ONNX Runtime
    (exact; not a backend: measured against onnx to choose). Cached beside the exports."""
    import openvino as ov

    from search.backends.onnx_reranker import OnnxReranker, _load_for_export, _load_tokenizer_and_config
    from search.backends.runtime.onnx_export import ExportRecipe, cached_entry, export_unfused
    from search.backends.runtime.openvino_int8 import IR_FILE, compile_export

    reranker = OnnxReranker(folder)
    _, _, model_folder, source = _load_tokenizer_and_config(folder)
    recipe = ExportRecipe("reranker", lambda: _load_for_export(folder, model_folder, source),
                          reranker.export.input_names, "logits", output_is_sequence=False)

    def build(out: Path) -> dict:
        meta = export_unfused(folder, recipe, out)
        ov.save_model(ov.convert_model(str(out / "model.onnx")), str(out / IR_FILE), compress_to_fp16=False)
        for name in ("model.onnx", "model.onnx.data"):
            (out / name).unlink(missing_ok=True)
        return {**meta, "task": "reranker", "precision": "fp32", "model_file": IR_FILE, "runtime": "openvino"}

    export = cached_entry(folder, model_folder, "reranker-fp32-openvino-benchmark", build)
    reranker.export, reranker.session = export, compile_export(export)
    reranker.label = f"{folder} · OpenVINO fp32 (exact)"
    return reranker


def _onnx_unfused(folder: str):
    """The onnx backend's reranker running the unfused fp32 export (exact; ONNX Runtime's session optimizer
    still fuses what it knows): not a backend, measured against the fused graph to choose."""
    from search.backends.onnx_reranker import OnnxReranker, _load_for_export, _load_tokenizer_and_config
    from search.backends.runtime.onnx_export import ExportRecipe, cached_entry, export_unfused, open_session

    reranker = OnnxReranker(folder)
    _, _, model_folder, source = _load_tokenizer_and_config(folder)
    recipe = ExportRecipe("reranker", lambda: _load_for_export(folder, model_folder, source),
                          reranker.export.input_names, "logits", output_is_sequence=False)

    def build(out: Path) -> dict:
        return {**export_unfused(folder, recipe, out), "task": "reranker", "precision": "fp32"}

    export = cached_entry(folder, model_folder, "reranker-fp32-unfused-benchmark", build)
    reranker.export, reranker.session = export, open_session(export)
    reranker.label = f"{folder} · onnx, unfused (exact)"
    return reranker


def compare_backends(args: argparse.Namespace, folder: str) -> None:
    """torch, onnx and int8 side by side with CrossEncoder.predict on the model in `folder`: pairs/s and
    the speed ratio per interleaved round, max |score - torch|, then export cost and memory of each,
    measured in fresh processes."""
    import os

    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder

    languages = args.languages.split(",")
    passages = read_passages(args.pairs, seed=0, languages=languages, cut=not args.fresh)
    # --fresh: other pairs every round (the same for every backend in a round), so no cache could answer.
    rounds_passages = [read_passages(args.pairs, seed=r, languages=languages, cut=False)
                       for r in range(args.rounds + 1)] if args.fresh else [passages]
    script = str(Path(__file__).resolve())
    common = ["--model", folder, "--pairs", str(args.pairs), "--languages", args.languages]
    names = [name.strip() for name in args.only.split(",")]
    with tempfile.TemporaryDirectory() as temporary:
        cache = str(Path(args.work) / "cache") if args.work else temporary
        env = {"SEARCH_ONNX_CACHE": cache}
        print(f"exporting (fresh processes; cache {cache}) ...", flush=True)
        exports = {}
        for name in ("onnx", "int8", "int8-ort", "ov-fp32", "onnx-unfused"):
            if name in names:
                entry = {"onnx": "reranker-fp32", "int8": "reranker-int8-openvino-*", "int8-ort": "reranker-int8",
                         "ov-fp32": "reranker-fp32-openvino-benchmark",
                         "onnx-unfused": "reranker-fp32-unfused-benchmark"}[name]
                cached = bool(list(Path(cache).glob(f"*/{weights_key(folder)}/{entry}")))  # this model's entry
                exports[name] = {**run_probe(script, [*common, "--probe", name], env), "cached": cached}
                print(f"  {name}: {exports[name]}", flush=True)
        os.environ["SEARCH_ONNX_CACHE"] = cache
        rerankers = {name: _load(folder, name) for name in dict.fromkeys(("torch", *names))}  # torch: the reference
        torch_reranker = rerankers["torch"]
        cross_encoder = CrossEncoder(folder, device="cpu", max_length=torch_reranker.max_length)
        calls: dict[str, int] = {}

        def this_round(name: str) -> list[str]:  # each run's n-th call reads the n-th set of passages
            calls[name] = calls.get(name, 0) + 1
            return rounds_passages[(calls[name] - 1) % len(rounds_passages)]

        runs = {BASELINE: lambda: cross_encoder.predict([(QUERY, p) for p in this_round(BASELINE)], batch_size=16,
                                                        activation_fn=torch.nn.Identity(), show_progress_bar=False)}
        runs.update({name: (lambda r=reranker, n=name: r.score(QUERY, this_round(n)))
                     for name, reranker in rerankers.items() if name in names})
        lengths = sorted(len(ids) for ids in torch_reranker.pair_token_ids(QUERY, passages))
        print(f"{len(passages)} pairs, tokens per pair min {lengths[0]} / median {lengths[len(lengths) // 2]} / "
              f"max {lengths[-1]}; torch threads {torch.get_num_threads()}; {args.rounds} interleaved rounds",
              flush=True)
        timings = interleaved(runs, rounds=args.rounds, baseline=BASELINE, warmup=not args.no_warmup)
        reference = np.array([s.raw for s in torch_reranker.score(QUERY, passages)])
        predicted = cross_encoder.predict([(QUERY, p) for p in passages], batch_size=16,
                                          activation_fn=torch.nn.Identity(), show_progress_bar=False)
        differences = {BASELINE: float(np.abs(np.asarray(predicted, dtype=float) - reference).max())}
        differences.update({name: float(np.abs(np.array([s.raw for s in r.score(QUERY, passages)]) - reference).max())
                            for name, r in rerankers.items()})
        memory = {}
        if not args.no_memory:
            print("measuring memory (fresh processes, cache filled) ...", flush=True)
            memory = {name: run_probe(script, [*common, "--probe", name], env) for name in runs}

    print(f"\n| backend | pairs/s (median) | speed vs {BASELINE}, median [min-max] | speed vs torch | "
          "max abs diff vs torch |")
    print("| --- | ---: | --- | --- | ---: |")
    for name, timing in timings.items():
        label = rerankers[name].label.rpartition(" · ")[2] if name in rerankers else name
        label = "torch" if name == "torch" else label
        label = "onnx int8 (ORT dynamic, quantized)" if name == "int8-ort" else label
        print(f"| {label} | {len(passages) / timing.median_seconds:.2f} | {timing.ratio_text()} | "
              f"{timing.ratio_to(timings['torch']) if 'torch' in timings else '-'} | {differences[name]:.1e} |")
    print("\n| step (fresh process) | seconds | peak RSS MB |")
    print("| --- | ---: | ---: |")
    for name, result in exports.items():
        what = {"onnx": "export fp32 + fuse + load", "int8": "export + OpenVINO/NNCF static int8 + load",
                "int8-ort": "ORT dynamic int8 (from the fp32 export) + load",
                "ov-fp32": "export fp32 (unfused) + OpenVINO IR + load",
                "onnx-unfused": "export fp32 (unfused) + load"}[name]
        what += " (was cached: load only)" if result["cached"] else ""
        print(f"| {what} | {result['load_s']:.1f} | {result['peak_mb']:.0f} |")
    print("\n| loaded backend | load s (cached) | RSS after load + one call, MB above imports | peak RSS MB |")
    print("| --- | ---: | ---: | ---: |")
    for name, result in memory.items():
        print(f"| {name} | {result['load_s']:.1f} | {result['loaded_mb']:.0f} | {result['peak_mb']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hub id or local folder of a cross-encoder (default: build a small one)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,4,16,32", help="comma-separated (default 1,4,16,32)")
    parser.add_argument("--late-interaction", action="store_true", help="also time the offline fallback")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--backends", action="store_true",
                        help="compare the torch, onnx and int8 backends with CrossEncoder.predict")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds for --backends")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="base",
                        help="--backends: the random model's shape, bge-reranker-base or bge-reranker-v2-m3")
    parser.add_argument("--only", default=",".join(BACKEND_NAMES),
                        help=f"--backends: which to time besides {BASELINE} (default {','.join(BACKEND_NAMES)}; "
                             f"also {','.join(EXTRA_NAMES)})")
    parser.add_argument("--fresh", action="store_true",
                        help="--backends: other (uncut) paragraphs every round, the same for every backend")
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="XQuAD languages the passages come from")
    parser.add_argument("--no-warmup", action="store_true", help="--backends: no untimed first round (big models)")
    parser.add_argument("--no-memory", action="store_true", help="--backends: skip the memory probes")
    parser.add_argument("--work", help="--backends: keep the random model and the exports in this folder")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # one backend in a fresh process, for memory
    args = parser.parse_args()

    if args.probe:
        probe(args)
        return
    if args.backends:
        args.pairs = 20 if args.pairs == 64 else args.pairs
        if args.model:
            compare_backends(args, args.model)
            return
        with tempfile.TemporaryDirectory() as folder:
            model = Path(args.work or folder) / f"model-{args.shape}"
            if not (model / "config.json").exists():
                print(f"building a random {args.shape}-shaped model ...", flush=True)
                build_base_shaped(model, [QUERY, *read_passages(2000, seed=1)], args.shape)
            compare_backends(args, str(model))
        return

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
