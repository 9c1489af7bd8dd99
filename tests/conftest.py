"""Shared test configuration.

* Haystack telemetry is switched off and Hugging Face hubs are forced offline for the
  whole suite: nothing may be downloaded at test time.
* ``shared_data`` points at ``../shared/data`` (or ``$RERANK_RAG_DATA``); tests that need
  it skip with a clear message when it is absent (a user's fresh clone has no data).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("RERANK_RAG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _data_dir()
    if not path.is_dir():
        pytest.skip(f"evaluation data not found at {path} (set RERANK_RAG_DATA to its folder)")
    return path


@pytest.fixture
def relevance_oracle():
    """A factory of deterministic answers for any prompt that shows ``[label] text`` lines.

    ``relevance_oracle(rel)`` returns ``handler(messages, **params)`` for a FakeLLM: it
    reads the labelled passages, orders them by ``rel(text)`` (ties: shown order) and
    answers ``[b] > [a] > ...``; with ``top_logprobs`` in the params it answers the best
    label with first-token logprobs ``rel(text)`` per label. Pick-best prompts read the
    first id, selection prompts the first ``m``, listwise prompts the permutation.
    """
    import re

    from rerank_rag import Completion

    line = re.compile(r"(?m)^\[(\w+)\] (.*)$")

    def make(rel):
        def handler(messages, **params):
            text = "\n".join(m["content"] for m in messages)
            shown = line.findall(text)
            best = sorted(range(len(shown)), key=lambda i: (-rel(shown[i][1]), i))
            if "top_logprobs" in params:
                tops = {shown[i][0]: float(rel(shown[i][1])) for i in best}
                return Completion(text=shown[best[0]][0], top_logprobs=tops)
            return " > ".join(f"[{shown[i][0]}]" for i in best)

        return handler

    return make
