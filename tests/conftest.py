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
