"""The Ray engine on a local Ray instance started by the test: same seed and inputs give
the same run file as the local engine, for a one-round method (block rows through the
actor pool, aggregated on the driver) and a sequential one (whole queries per actor).
Few, short tests: Ray start-up is slow on small machines; the stages' logic (pointwise
rows, permanent errors) is tested without Ray in test_batch_ray_stages.py."""

from __future__ import annotations

import pytest

try:
    import ray
    import ray.data  # noqa: F401
except ImportError:  # pragma: no cover - the dev setup installs rerank-rag[ray]
    pytest.skip("ray[data] is not installed (pip install 'rerank-rag[ray]')", allow_module_level=True)

from rerank_rag import JointRanker, ListwiseRanker
from rerank_rag.batch import RayEngine, rerank_to_run
from rerank_rag.eval import SimulatedLLM
from rerank_rag.llm import OpenAICompatibleLLM
from rerank_rag.testing import synthetic_qrels, synthetic_queries

NQ, NC = 10, 12
QRELS, CORPUS, TOPICS = synthetic_qrels(NQ, NC, seed=11, words=12)


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def sim():
    with SimulatedLLM(QRELS, corpus=CORPUS, queries=TOPICS, seed=2) as s:
        yield s


@pytest.mark.parametrize(
    "make, split",
    [
        (lambda llm: JointRanker(llm, block_size=6, replicas=2, seed=3), "blocks"),
        (lambda llm: ListwiseRanker(llm, window_size=6, step=3), "queries"),
    ],
    ids=["jointrank", "sliding"],
)
def test_ray_engine_writes_the_local_engines_run_file(local_ray, sim, make, split, tmp_path):
    queries = list(synthetic_queries(NQ, NC, seed=11, words=12))
    llm = OpenAICompatibleLLM(sim.model, base_url=sim.base_url, api_key="x", max_concurrency=8)
    ranker = make(llm)
    assert RayEngine(ranker).split == split
    local = rerank_to_run(ranker, queries, tmp_path / "local.trec", progress="off", max_calls_in_flight=8)
    remote = rerank_to_run(
        ranker, queries, tmp_path / "ray.trec", engine="ray", progress="off",
        max_calls_in_flight=8, num_actors=1, actor_num_cpus=0.5,
    )
    assert (tmp_path / "ray.trec").read_text() == (tmp_path / "local.trec").read_text()
    assert remote["per_query"] == local["per_query"]  # same calls, tokens, retries per query
    assert remote["this_run"]["engine_stats"]["split"] == split
    assert remote["this_run"]["engine_stats"]["driver_calls"] == 0  # no block needed a retry round
