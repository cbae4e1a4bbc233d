"""Tiny local models for tests and benchmarks: random weights, a tokenizer trained on the given texts,
saved the way the Hub serves real ones (safetensors + tokenizer.json), so they load through the same
`from_pretrained` path as production models without any download."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# XLM-R's special tokens in XLM-R's order, so <pad> gets id 1 (the model's padding_idx).
XLMR_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def train_xlmr_tokenizer(corpus: Sequence[str], *, vocab_size: int = 400, model_max_length: int = 512):
    """Return an `XLMRobertaTokenizerFast` with a Unigram vocabulary trained on `corpus`, encoding pairs
    as XLM-R does: ``<s> A </s></s> B </s>``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizerFast

    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=list(XLMR_SPECIAL_TOKENS),
                                      unk_token="<unk>", show_progress=False)
    backend.train_from_iterator(corpus, trainer)
    bos, eos = backend.token_to_id("<s>"), backend.token_to_id("</s>")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    return XLMRobertaTokenizerFast(tokenizer_object=backend, model_max_length=model_max_length,
                                   bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def build_tiny_xlmr_cross_encoder(folder: Path, corpus: Sequence[str], *, max_position_embeddings: int = 514,
                                  num_labels: int = 1, hidden_size: int = 32, num_hidden_layers: int = 2,
                                  vocab_size: int = 400, seed: int = 0, num_attention_heads: int = 2,
                                  intermediate_size: int | None = None) -> Path:
    """Build and save a random-weight `XLMRobertaForSequenceClassification` with a tokenizer trained on
    `corpus`; return `folder`.

    The tokenizer's `model_max_length` is ``max_position_embeddings - 2`` (XLM-R's position ids start
    after its padding index), so a small `max_position_embeddings` gives a model that truncates early.
    Weights are initialised wide (initializer_range 0.5) so that different pairs get clearly different
    logits, which makes score comparisons in tests meaningful. `intermediate_size` defaults to twice
    `hidden_size` (benchmarks pass a real model's shape, e.g. 768 / 12 layers / 12 heads / 3072).
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_xlmr_tokenizer(corpus, vocab_size=vocab_size, model_max_length=max_position_embeddings - 2)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size or 2 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        num_labels=num_labels, initializer_range=0.5, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = XLMRobertaForSequenceClassification(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
