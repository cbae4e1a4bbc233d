"""Real TEI and OpenAI clients, each used as its documentation shows with only the URL changed, against
`search.serve` on 127.0.0.1 (one server for the module: the tiny cross-encoder and the bundled MiniLM). Each
answer is checked against the server's own /embed or /rerank answer, so a client that silently read an
error body as its result fails.

The clients are the `test` extra (pyproject.toml). langchain-huggingface can't be installed beside this
project's transformers (it pins huggingface-hub below 2, transformers needs 2.4 or later), so its request
is made as it makes it: `InferenceClient(model=URL).feature_extraction(texts)` (its
HuggingFaceEndpointEmbeddings does exactly that).
"""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from search.loading import load_dense_encoder, load_reranker
from search.models import MINILM_ID
from search.serve import TEIService, create_app
from tests.tei_helpers import uvicorn_server
from tests.tiny_models import build_tiny_xlmr_cross_encoder

QUERY = "Which river flows through Berlin?"
PASSAGES = ["The Spree flows through the centre of Berlin.", "Bananas are rich in potassium.",
            "Berlin has many bridges over its river."]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    folder = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-clients"), [QUERY, *PASSAGES] * 5)
    service = TEIService.from_models(reranker=load_reranker(str(folder), "cpu", fallback=False),
                                     encoder=load_dense_encoder(MINILM_ID, "cpu", fallback=False))
    with uvicorn_server(create_app(service)) as base:
        yield base


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No client may phone home: telemetry off, no token from the environment."""
    for name in ("HF_TOKEN", "HF_API_TOKEN", "OPENAI_API_KEY", "LANGSMITH_TRACING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def embedded(url: str, texts, *, normalize: bool = True) -> np.ndarray:
    response = httpx.post(url + "/embed", json={"inputs": texts, "normalize": normalize}, timeout=30)
    assert response.status_code == 200, response.text
    return np.array(response.json())


def ranked(url: str, texts: list[str]) -> list[int]:
    response = httpx.post(url + "/rerank", json={"query": QUERY, "texts": texts}, timeout=30)
    assert response.status_code == 200, response.text
    return [rank["index"] for rank in response.json()]


# -- huggingface_hub ----------------------------------------------------------------------------------

def test_huggingface_hub_inference_client(url):
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=url)
    vector = client.feature_extraction("Today is a sunny day and I will get some ice cream.")
    np.testing.assert_allclose(vector, embedded(url, "Today is a sunny day and I will get some ice cream."),
                               atol=1e-5)


def test_huggingface_hub_async_inference_client(url):
    from huggingface_hub import AsyncInferenceClient

    async def run():
        client = AsyncInferenceClient(base_url=url)
        return await client.feature_extraction(PASSAGES[0])

    # In a thread of its own: an earlier test of the run (Gradio, Playwright) may leave this thread's loop running.
    with ThreadPoolExecutor(1) as pool:
        vector = pool.submit(asyncio.run, run()).result(timeout=120)
    np.testing.assert_allclose(vector, embedded(url, PASSAGES[0]), atol=1e-5)


def test_langchain_huggingface_endpoint_embeddings_request(url):
    """langchain-huggingface's HuggingFaceEndpointEmbeddings(model=URL).embed_documents(texts): the call it
    makes (see the module's docstring)."""
    from huggingface_hub import InferenceClient

    vectors = InferenceClient(model=url).feature_extraction(text=PASSAGES)
    np.testing.assert_allclose(vectors, embedded(url, PASSAGES), atol=1e-5)


# -- openai ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
def test_openai_embeddings(url, encoding_format):
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="not-needed")
    options = {} if encoding_format is None else {"encoding_format": encoding_format}
    response = client.embeddings.create(model=MINILM_ID, input=PASSAGES, **options)
    vectors = [item.embedding for item in response.data]
    if encoding_format == "base64":  # asked for by name, the SDK hands the strings over as they came
        vectors = [np.frombuffer(base64.b64decode(vector), dtype="<f4") for vector in vectors]
    np.testing.assert_allclose(vectors, embedded(url, PASSAGES), atol=1e-5)
    assert response.model == MINILM_ID and response.usage.prompt_tokens == response.usage.total_tokens > 0


def test_openai_errors_reach_the_client_with_the_servers_message(url):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0)
    with pytest.raises(openai.BadRequestError) as error:
        client.embeddings.create(model=MINILM_ID, input=["ok", ""])
    assert "`inputs` cannot be empty" in str(error.value) and error.value.status_code == 400


# -- LlamaIndex -----------------------------------------------------------------------------------------

def test_llama_index_tei_embeddings(url):
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    embed_model = TextEmbeddingsInference(model_name=MINILM_ID, base_url=url, timeout=60, embed_batch_size=10)
    np.testing.assert_allclose(embed_model.get_text_embedding("Hello World!"), embedded(url, "Hello World!")[0],
                               atol=1e-5)
    np.testing.assert_allclose(embed_model.get_text_embedding_batch(PASSAGES), embedded(url, PASSAGES), atol=1e-5)


def test_llama_index_tei_rerank(url):
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    from llama_index.postprocessor.tei_rerank import TextEmbeddingInference

    reranker = TextEmbeddingInference(top_n=2, model_name="BAAI/bge-reranker-base", base_url=url)
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in PASSAGES]
    top = reranker.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    assert [node.node.get_content() for node in top] == [PASSAGES[i] for i in ranked(url, PASSAGES)[:2]]


# -- Haystack -------------------------------------------------------------------------------------------

def test_haystack_tei_text_and_document_embedders(url):
    from haystack import Document
    from haystack_integrations.components.embedders.huggingface_api import (
        HuggingFaceAPIDocumentEmbedder,
        HuggingFaceAPITextEmbedder,
    )

    text_embedder = HuggingFaceAPITextEmbedder(api_type="text_embeddings_inference", api_params={"url": url})
    embedding = text_embedder.run(text="I love pizza!")["embedding"]
    np.testing.assert_allclose(embedding, embedded(url, "I love pizza!", normalize=False)[0], atol=1e-4)
    document_embedder = HuggingFaceAPIDocumentEmbedder(api_type="text_embeddings_inference",
                                                       api_params={"url": url})
    documents = document_embedder.run(documents=[Document(content=text) for text in PASSAGES])["documents"]
    np.testing.assert_allclose([document.embedding for document in documents],
                               embedded(url, PASSAGES, normalize=False), atol=1e-4)


def test_haystack_tei_ranker_with_left_truncation(url):
    from haystack import Document
    from haystack_integrations.components.rankers.huggingface_api import HuggingFaceTEIRanker, TruncationDirection

    reranker = HuggingFaceTEIRanker(url=url, top_k=3, timeout=30)
    docs = [Document(content=text) for text in PASSAGES]
    result = reranker.run(query=QUERY, documents=docs, truncation_direction=TruncationDirection.LEFT)
    assert [document.content for document in result["documents"]] == [PASSAGES[i] for i in ranked(url, PASSAGES)]


# -- LangChain ------------------------------------------------------------------------------------------

def test_langchain_community_inference_api_embeddings(url):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice points to langchain-huggingface
        from langchain_community.embeddings import HuggingFaceInferenceAPIEmbeddings

        embeddings = HuggingFaceInferenceAPIEmbeddings(api_key="not-needed", api_url=url, model_name=MINILM_ID)
        documents = embeddings.embed_documents(PASSAGES)
        query = embeddings.embed_query(QUERY)
    np.testing.assert_allclose(documents, embedded(url, PASSAGES), atol=1e-5)
    np.testing.assert_allclose(query, embedded(url, QUERY)[0], atol=1e-5)


# -- rerankers ------------------------------------------------------------------------------------------

def test_rerankers_tei_api_ranker(url):
    from rerankers import Reranker

    ranker = Reranker("BAAI/bge-reranker-base", model_type="APIRanker", api_provider="text-embeddings-inference",
                      api_key=None, url=url + "/rerank", verbose=0)
    results = ranker.rank(query=QUERY, docs=PASSAGES)
    assert [result.document.text for result in results.top_k(3)] == [PASSAGES[i] for i in ranked(url, PASSAGES)]
