"""Shared test configuration.

* Haystack telemetry is switched off and Hugging Face hubs are forced offline for the
  whole suite: nothing may be downloaded at test time.
* ``shared_data`` points at ``../shared/data`` (or ``$RERANK_RAG_DATA``); tests that need
  it skip with a clear message when it is absent (a user's fresh clone has no data).
* Tests marked ``local_llm`` are skipped with the reason where the local llama.cpp
  server cannot run (the ``local`` extra or the model package is missing);
  ``local_llm_server`` is one SmolLM2-135M server shared by the whole session.
"""

from __future__ import annotations

import functools
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
    reads the labelled passages, orders them by ``rel(text)`` (ties: shown order; ``rel``
    may also be a sequence of strengths of passages ``"doc <i> ..."``, ``rel[i]``) and
    answers ``[b] > [a] > ...``; with ``top_logprobs`` in the params it answers the best
    label with first-token logprobs ``rel(text)`` per label. Pick-best prompts read the
    first id, selection prompts the first ``m``, listwise prompts the permutation.
    """
    import re

    from rerank_rag import Completion

    line = re.compile(r"(?m)^\[(\w+)\] (.*)$")
    doc = re.compile(r"doc (\d+)")

    def make(rel):
        if not callable(rel):
            strengths = rel

            def rel(text):
                return strengths[int(doc.search(text).group(1))]

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


# -- the local llama.cpp server --------------------------------------------------------


@functools.cache
def local_llm_missing() -> str | None:
    """Why the local llama.cpp server cannot run here (``None``: it can)."""
    from rerank_rag import MissingDependencyError
    from rerank_rag.local import check_local_dependencies, resolve_model

    try:
        check_local_dependencies()
        resolve_model("smollm2", verify=False)
    except MissingDependencyError as exc:
        return f"local LLM extra not installed: {exc}"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("local_llm") is not None and local_llm_missing() is not None:
        pytest.skip(local_llm_missing())


@pytest.fixture(scope="session")
def local_llm_server():
    """One SmolLM2-135M llama.cpp server (``n_ctx=2048``) for every test that asks for
    it, started on first use and stopped at the end of the session. Tests only send it
    requests (its ``llm`` is the shared client); lifecycle tests start their own."""
    if local_llm_missing() is not None:
        pytest.skip(local_llm_missing())
    from rerank_rag.local import LocalLLMServer

    with LocalLLMServer("smollm2", n_ctx=2048, startup_timeout=120) as srv:
        yield srv
