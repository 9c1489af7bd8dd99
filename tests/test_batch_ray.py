"""The Ray engine on a local Ray instance started by the test: same seed and inputs give
the same run file as the local engine, for a one-round method (block rows through the
actor pool, aggregated on the driver) and a sequential one (whole queries per actor); a
worker process killed mid-run loses nothing. Few, short tests: Ray start-up is slow on
small machines; the stages' logic (pointwise rows, permanent errors) is tested without
Ray in test_batch_ray_stages.py."""

from __future__ import annotations

import os
import signal
import sys

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


def _JOINT(llm):
    return JointRanker(llm, block_size=6, replicas=2, seed=3)


def _SLIDING(llm):
    return ListwiseRanker(llm, window_size=6, step=3)


@pytest.mark.parametrize("make, split", [(_JOINT, "blocks"), (_SLIDING, "queries")], ids=["jointrank", "sliding"])
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


class _DiesOnce:
    """An LLM backend that kills the process it runs in (``SIGKILL``: no clean-up, like an
    OOM kill or a lost node) at its ``at``-th call, with its other calls in flight. Once
    per test (the first process to create ``marker``), never in the test's own process."""

    def __init__(self, llm, marker, at, spare_pid):
        self.llm, self.marker, self.at, self.spare_pid = llm, marker, at, spare_pid
        self.calls = 0

    @property
    def max_concurrency(self):
        return self.llm.max_concurrency

    def cache_identity(self):
        return self.llm.cache_identity()

    def complete(self, messages, **params):
        return self.llm.complete(messages, **params)

    async def acomplete(self, messages, **params):
        self.calls += 1
        if self.calls == self.at and os.getpid() != self.spare_pid:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass  # a restarted worker: it was killed once already
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return await self.llm.acomplete(messages, **params)

    async def aclose(self):
        await self.llm.aclose()


@pytest.mark.parametrize("make", [_JOINT, _SLIDING], ids=["jointrank", "sliding"])
def test_a_ray_worker_killed_mid_run_loses_nothing(local_ray, sim, make, tmp_path):
    """Ray Data restarts the killed actor and retries the batches it held (block rows or
    whole queries); the driver keeps the first answer of anything answered twice: every
    query is in the run once, and the run (and the usage per query) is the uninterrupted
    one."""
    from ray import cloudpickle

    queries = list(synthetic_queries(NQ, NC, seed=11, words=12))
    llm = OpenAICompatibleLLM(sim.model, base_url=sim.base_url, api_key="x", max_concurrency=8)
    local = rerank_to_run(make(llm), queries, tmp_path / "local.trec", progress="off", max_calls_in_flight=8)
    calls = local["usage"]["totals"]["llm_calls"]
    marker = tmp_path / "killed.pid"
    dying = make(_DiesOnce(llm, str(marker), at=calls // 2, spare_pid=os.getpid()))
    sent_before = sim.stats["requests"]
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    try:
        remote = rerank_to_run(
            dying, queries, tmp_path / "ray.trec", engine="ray", progress="off",
            max_calls_in_flight=8, num_actors=1, actor_num_cpus=0.5,
        )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert int(marker.read_text()) != os.getpid()  # a worker process was killed, at call calls // 2
    assert sim.stats["requests"] - sent_before >= calls
    run = (tmp_path / "ray.trec").read_text()
    assert run == (tmp_path / "local.trec").read_text()
    qids = [line.split()[0] for line in run.splitlines()]
    assert list(dict.fromkeys(qids)) == [qid for qid, _, _ in queries]
    assert remote["queries"] == NQ and remote["per_query"] == local["per_query"]
