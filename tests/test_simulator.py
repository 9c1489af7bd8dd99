"""SimulatedLLM: passage recognition, answer formats, noise model, latency, faults.

Uses a small synthetic corpus made here (no shared data needed). Most checks call
``sim.respond(body)`` directly; a few go through HTTP on 127.0.0.1 with the real client.
"""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_rag.eval._simulator import FaultConfig, LatencyModel, SimulatedLLM, normalise
from rerank_rag.listwise._prompts import FirstTokenPrompt, RankGPTPrompt, RelevantOnlyPrompt
from rerank_rag.llm._base import Completion

TOPICS = ["glaciers", "volcanoes", "tides", "comets", "deserts", "rivers", "forests", "storms"]


def _corpus(n: int = 40) -> tuple[dict[str, str], dict[str, dict[str, int]], dict[str, str]]:
    corpus = {}
    grades = {}
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        corpus[f"d{i}"] = (
            f"Passage number {i} is about {topic}: report {i * 7919 % 1000} on {topic} "
            f"with details {i} and more text that goes on for a while about {topic}."
        )
        grades[f"d{i}"] = (i * 5) % 4  # grades 0..3, mixed
    qrels = {"q1": grades}
    return corpus, qrels, {"q1": "which passages matter most"}


def _body(req, logprobs: bool = False) -> dict:
    body = {"model": "m", "messages": [dict(m) for m in req.messages], **dict(req.params)}
    if logprobs:
        body["logprobs"] = True
    return body


def _ids(corpus, docids):
    return [corpus[d] for d in docids]


def test_noise_free_rankgpt_answer_is_the_true_order():
    corpus, qrels, queries = _corpus()
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0)
    window = [f"d{i}" for i in range(3, 23)]
    req = RankGPTPrompt().build(queries["q1"], _ids(corpus, window))
    reply = sim.respond(_body(req))
    parsed = RankGPTPrompt().parse(Completion(text=reply.text), len(window))
    assert not parsed.repaired and len(parsed.listed) == 20
    got = [qrels["q1"][window[i]] for i in parsed.listed]
    # non-increasing grades; ties keep window order
    expected = sorted(range(20), key=lambda i: (-qrels["q1"][window[i]], i))
    assert list(parsed.listed) == expected and got == sorted(got, reverse=True)
    assert reply.prompt_tokens and reply.prompt_tokens > 20 * 10 and reply.completion_tokens > 0


def test_passages_are_recognised_despite_sanitising_truncation_and_mojibake():
    corpus = {
        "a": "Ã©clair recipe [1] with   cream,\nand sugar; " + "filler words " * 80,
        "b": "Bread is baked from flour [2] and water and yeast for a long time in ovens.",
        "c": "Cheese making with rennet and milk and salt and patience for many months.",
    }
    qrels = {"q": {"a": 0, "b": 3, "c": 1}}
    sim = SimulatedLLM(qrels, corpus=corpus, queries={"q": "baking"}, noise=0.0)
    # truncated to 20 tokens, ids rewritten to (1), whitespace collapsed; mojibake "fixed"
    shown = ["\u00e9clair recipe (1) with cream,\n and sugar; " + "filler words " * 6, corpus["b"], corpus["c"]]
    req = RankGPTPrompt(max_passage_tokens=20).build("baking", shown)
    reply = sim.respond(_body(req))
    assert reply.text == "[2] > [3] > [1]"
    assert sim.stats["passages_seen"] == 3 and sim.stats["unrecognised"] == 0


def test_relevant_only_lists_relevant_passages_or_says_none():
    corpus, qrels, queries = _corpus(12)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0)
    window = [f"d{i}" for i in range(12)]
    req = RelevantOnlyPrompt().build(queries["q1"], _ids(corpus, window))
    reply = sim.respond(_body(req))
    parsed = RelevantOnlyPrompt().parse(Completion(text=reply.text), len(window))
    listed = {window[i] for i in parsed.listed}
    assert listed == {d for d in window if qrels["q1"][d] >= 1}
    zero = [d for d in window if qrels["q1"][d] == 0]
    req = RelevantOnlyPrompt().build(queries["q1"], _ids(corpus, zero))
    assert sim.respond(_body(req)).text == "NO_RELEVANT_SNIPPETS"


def test_first_token_answer_carries_logprobs_in_relevance_order():
    corpus, qrels, queries = _corpus(10)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0)
    window = [f"d{i}" for i in range(10)]
    prompt = FirstTokenPrompt()
    req = prompt.build(queries["q1"], _ids(corpus, window))
    reply = sim.respond(_body(req, logprobs=True))
    assert reply.top_logprobs is not None and len(reply.top_logprobs) == 10
    parsed = prompt.parse(Completion(text=reply.text, top_logprobs=reply.top_logprobs), 10)
    grades = [qrels["q1"][window[i]] for i in parsed.listed]
    assert grades == sorted(grades, reverse=True) and len(parsed.listed) == 10
    assert reply.text == "ABCDEFGHIJ"[parsed.listed[0]]


def test_yes_no_pointwise_answer():
    corpus, qrels, queries = _corpus(8)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0)
    for d, g in qrels["q1"].items():
        body = {
            "messages": [
                {"role": "system", "content": "Reply with exactly one word: Yes or No."},
                {"role": "user", "content": f"Query: {queries['q1']}\n\nPassage: {corpus[d]}\n\n"
                 "Does the passage help answer the query? Answer Yes or No."},
            ],
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": 5,
        }
        reply = sim.respond(body)
        assert reply.text == ("Yes" if g >= 1 else "No")
        lp = reply.top_logprobs
        assert (lp["Yes"] > lp["No"]) == (g >= 1)


def _inversion_rate(sim, corpus, qrels, size: int, trials: int) -> float:
    inv = pairs = 0
    docs = sorted(corpus)
    for t in range(trials):
        window = [docs[(t * 3 + j) % len(docs)] for j in range(size)]
        req = RankGPTPrompt().build("which passages matter most", _ids(corpus, window))
        parsed = RankGPTPrompt().parse(Completion(text=sim.respond(_body(req)).text), size)
        g = [qrels["q1"][window[i]] for i in parsed.full_order(size)]
        for i in range(size):
            for j in range(i + 1, size):
                if g[i] != g[j]:
                    pairs += 1
                    inv += g[i] < g[j]
    return inv / pairs


def test_noise_grows_with_the_number_of_passages_shown():
    corpus, qrels, queries = _corpus(40)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.5, noise_growth=0.3, seed=3)
    small = _inversion_rate(sim, corpus, qrels, 4, 60)
    large = _inversion_rate(sim, corpus, qrels, 32, 8)
    assert small < large
    exact = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0)
    assert _inversion_rate(exact, corpus, qrels, 32, 3) == 0.0


def test_answers_are_deterministic_per_seed_and_request():
    corpus, qrels, queries = _corpus(30)
    req = RankGPTPrompt().build(queries["q1"], _ids(corpus, [f"d{i}" for i in range(30)]))
    a = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=1.0, seed=1)
    b = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=1.0, seed=1)
    c = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=1.0, seed=2)
    assert a.respond(_body(req)).text == a.respond(_body(req)).text == b.respond(_body(req)).text
    assert a.respond(_body(req)).text != c.respond(_body(req)).text


def test_position_bias_favours_early_passages():
    corpus = {f"d{i}": f"Identical value passage number {i} about the same thing, word {i}." for i in range(10)}
    qrels = {"q": {d: 1 for d in corpus}}
    sim = SimulatedLLM(qrels, corpus=corpus, queries={"q": "same thing"}, noise=0.1, position_bias=5.0)
    window = [f"d{i}" for i in (7, 2, 9, 0, 5)]
    reply = sim.respond(_body(RankGPTPrompt().build("same thing", _ids(corpus, window))))
    assert reply.text == "[1] > [2] > [3] > [4] > [5]"


def test_relevance_function_mode_without_qrels():
    def rel(query: str, passage: str) -> float:
        return 3.0 if "volcano" in passage else 0.0

    sim = SimulatedLLM(rel, noise=0.0)
    texts = ["a text on tides", "a volcano erupts", "deserts are dry"]
    reply = sim.respond(_body(RankGPTPrompt().build("volcano facts", texts)))
    assert reply.text.startswith("[2] >")


def test_unrecognised_prompt_uses_the_fallback():
    corpus, qrels, queries = _corpus(5)
    body = {"messages": [{"role": "user", "content": "Decompose this question into sub-questions."}]}
    assert SimulatedLLM(qrels, corpus=corpus).respond(body).text == ""
    sim = SimulatedLLM(qrels, corpus=corpus, fallback=lambda b: "1. sub one")
    assert sim.respond(body).text == "1. sub one"
    assert sim.stats["unrecognised"] == 1


@pytest.mark.parametrize("kind", FaultConfig.KINDS)
def test_each_fault_kind_is_injected(kind):
    corpus, qrels, queries = _corpus(6)
    faults = FaultConfig(**{f"rate_{kind}": 1.0}, retry_after=2, timeout_delay=7.0, max_faults=1)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0, faults=faults)
    body = _body(RankGPTPrompt().build(queries["q1"], _ids(corpus, sorted(corpus))))
    normal = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0).respond(body).text
    first, second = sim.respond(body), sim.respond(body)
    assert second.status == 200 and second.text == normal and not second.reset  # max_faults=1
    if kind == "429":
        assert first.status == 429 and first.headers == {"Retry-After": "2"}
    elif kind == "500":
        assert first.status == 500
    elif kind == "reset":
        assert first.reset
    elif kind == "timeout":
        assert first.delay >= 7.0 and first.text == normal
    elif kind == "empty":
        assert first.status == 200 and first.text == ""
    else:
        assert first.status == 200 and 0 < len(first.text) < len(normal) and normal.startswith(first.text)
    assert sim.stats["faults"][kind] == 1 and sum(sim.stats["faults"].values()) == 1


def test_fault_rates_are_validated():
    with pytest.raises(ValueError, match="add up"):
        FaultConfig(rate_429=0.7, rate_500=0.7)
    with pytest.raises(ValueError, match="rate for 500"):
        FaultConfig(rate_500=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        LatencyModel(per_call=-1)
    with pytest.raises(ValueError, match="corpus"):
        SimulatedLLM({"q": {"d": 1}})


def test_latency_model_and_token_reporting():
    lat = LatencyModel(per_call=0.5, per_input_token=0.01, per_output_token=0.1)
    assert lat.seconds(100, 10) == pytest.approx(0.5 + 1.0 + 1.0)
    corpus, qrels, queries = _corpus(5)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0, latency=lat)
    reply = sim.respond(_body(RankGPTPrompt().build(queries["q1"], _ids(corpus, sorted(corpus)))))
    assert reply.delay == pytest.approx(lat.seconds(reply.prompt_tokens, reply.completion_tokens))
    assert sim.stats["prompt_tokens"] == reply.prompt_tokens
    assert sim.stats["label"] == "simulated" and sim.stats["preset"] == "dl19"


def test_over_http_with_the_real_client_latency_and_concurrency_limit():
    corpus, qrels, queries = _corpus(6)
    lat = LatencyModel(per_call=0.15)
    with SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.0, latency=lat, max_concurrency=2) as sim:
        assert sim.base_url.startswith("http://127.0.0.1:")
        llm = sim.client(max_concurrency=6, timeout=10.0)
        req = RankGPTPrompt().build(queries["q1"], _ids(corpus, sorted(corpus)))
        results: list[Completion] = []

        def call():
            results.append(llm.complete(list(req.messages), **req.params))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.perf_counter() - t0
        llm.close()
    assert len(results) == 6 and len({c.text for c in results}) == 1
    parsed = RankGPTPrompt().parse(results[0], 6)
    assert len(parsed.listed) == 6 and results[0].prompt_tokens > 0
    # 6 calls of 0.15 s, two at a time: at least three waves
    assert elapsed >= 3 * 0.15 - 0.02
    assert sim.stats["requests"] == 6


def test_normalise():
    assert normalise("Ã©clair  [1] With-CREAM!") == "clair1withcream"


# -- presets: one place for the defaults ------------------------------------------------


def test_constructor_and_command_line_share_the_default_preset():
    from rerank_rag.eval import DEFAULT_PRESET, PRESETS
    from rerank_rag.eval._cli import _sim_kwargs, build_parser

    corpus, qrels, queries = _corpus(4)
    plain = SimulatedLLM(qrels, corpus=corpus)
    args = build_parser().parse_args(["--run", "x.jsonl", "--method", "sliding"])
    cli = SimulatedLLM(qrels, corpus=corpus, **_sim_kwargs(args))
    keys = ("noise", "noise_growth", "doc_noise", "position_bias", "relevant_threshold", "latency", "preset")
    assert {k: plain.config()[k] for k in keys} == {k: cli.config()[k] for k in keys}
    p = PRESETS[DEFAULT_PRESET]
    assert (plain.noise, plain.noise_growth, plain.doc_noise, plain.position_bias) == (
        p.noise, p.noise_growth, p.doc_noise, p.position_bias)
    assert plain.label == cli.label == f"simulated (preset {DEFAULT_PRESET})"


def test_presets_are_named_and_overrides_are_labelled():
    from rerank_rag.eval import PRESETS, get_preset
    from rerank_rag.eval._cli import _sim_kwargs, build_parser

    corpus, qrels, _ = _corpus(4)
    assert {"dl19", "exact", "v0.1"} <= set(PRESETS)
    exact = SimulatedLLM(qrels, corpus=corpus, preset="exact")
    assert exact.noise == 0.0 and exact.label == "simulated (preset exact)" and exact.config()["preset"] == "exact"
    old = SimulatedLLM(qrels, corpus=corpus, preset="v0.1")
    assert (old.noise, old.noise_growth, old.doc_noise) == (0.8, 0.02, 0.3) and old.latency.per_call == 0.3
    tuned = SimulatedLLM(qrels, corpus=corpus, preset="dl19", noise=0.1, doc_noise=get_preset("dl19").doc_noise)
    assert tuned.label == "simulated (preset dl19, modified: noise=0.1)"  # an unchanged value is no change
    args = build_parser().parse_args(["--run", "x", "--method", "sliding", "--sim-preset", "v0.1", "--sim-noise", "0.2"])
    via_cli = SimulatedLLM(qrels, corpus=corpus, **_sim_kwargs(args))
    assert via_cli.preset.name == "v0.1" and via_cli.noise == 0.2 and via_cli.noise_growth == 0.02
    with pytest.raises(ValueError, match="unknown simulator preset 'gpt5'; choose one of: dl19"):
        SimulatedLLM(qrels, corpus=corpus, preset="gpt5")


def test_the_dl19_preset_records_its_calibration():
    from rerank_rag.eval import get_preset
    from rerank_rag.eval._sim_config import DL19_TARGETS

    cal = get_preset("dl19").calibration
    assert set(cal["targets"]) == set(DL19_TARGETS) == {"single", "jointrank", "sliding"}
    for method, (target, source) in DL19_TARGETS.items():
        assert cal["targets"][method] == target and source
        assert abs(cal["simulated"][method] - target) == pytest.approx(abs(cal["residuals"][method]), abs=1e-4)


def test_in_process_llm_answers_like_the_server():
    corpus, qrels, queries = _corpus(12)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=1.0, seed=4)
    req = RankGPTPrompt().build(queries["q1"], _ids(corpus, sorted(corpus)))
    fake = sim.in_process_llm()
    got = fake.complete(list(req.messages), **req.params)
    assert got.text == sim.respond(_body(req)).text and got.prompt_tokens > 0
    with SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=1.0, seed=4) as served:
        llm = served.client()
        assert llm.complete(list(req.messages), **req.params).text == got.text
        llm.close()
    faulty = SimulatedLLM(qrels, corpus=corpus, queries=queries, faults=FaultConfig(rate_500=1.0))
    from rerank_rag import LLMError

    with pytest.raises(LLMError, match="simulated fault"):
        faulty.in_process_llm().complete(list(req.messages))


DL19 = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl19"


@pytest.mark.skipif(not DL19.is_dir(), reason=f"DL19 data not found at {DL19}")
def test_the_dl19_preset_lands_near_the_published_figures():
    """One seed, in process (about 3 s): each method within its calibration residual plus
    three seed-to-seed standard deviations of the published figure."""
    from rerank_rag.eval import evaluate, get_preset, load_dl19, rank_dataset
    from rerank_rag.eval._methods import build_method

    ds = load_dl19(DL19.parent)
    cal = get_preset("dl19").calibration
    # the published JointRank figure is the paper's aggregator, PageRank (not our default)
    options = {"single": {"prompt": "rankgpt"}, "jointrank": {"aggregator": "pagerank"}, "sliding": {"window": 20, "step": 10}}
    got = {}
    for method, opts in options.items():
        sim = SimulatedLLM(ds.qrels, corpus=ds.corpus, queries={q.qid: q.text for q in ds.queries}, seed=0)
        rows = rank_dataset(build_method(method, dict(opts, seed=0), sim.in_process_llm()), ds)
        got[method] = evaluate({r["qid"]: r["docids"] for r in rows}, ds.qrels, ["ndcg@10"], threshold=2).means["ndcg@10"]
        tol = abs(cal["residuals"][method]) + 3 * cal["sd_over_seeds"][method]
        assert abs(got[method] - cal["targets"][method]) <= tol, (method, got[method], tol)
    assert got["single"] < got["jointrank"] and got["single"] < got["sliding"]


@settings(max_examples=300, deadline=None)
@given(
    queries=st.lists(st.text(alphabet="ab1 ", min_size=0, max_size=30) | st.text(alphabet="ab", min_size=15, max_size=30), min_size=1, max_size=10),
    data=st.data(),
)
def test_the_queries_shown_in_a_prompt_are_the_definitions(queries, data):
    """The strided gram index finds exactly the queries (8+ characters, in input order)
    whose text occurs in the normalised prompt (prompts quote queries, whole or cut, at
    any offset)."""
    quote = st.tuples(st.sampled_from(queries), st.integers(0, 4), st.integers(0, 4))
    pieces = st.tuples(st.text(alphabet="ab1-", max_size=9), quote.map(lambda t: t[0][t[1] : len(t[0]) - t[2]]))
    prompt = "".join(f + q for f, q in data.draw(st.lists(pieces, max_size=5)))
    sim = SimulatedLLM({}, corpus={}, queries={f"q{i}": t for i, t in enumerate(queries)})
    norm = normalise(prompt)
    expected = [q for q, t in sim._reader.queries_norm.items() if len(t) >= 8 and t in norm]
    assert sim._reader.queries_in(norm) == expected


def test_a_quoted_query_is_found_at_every_offset_and_length():
    for n in range(6, 24):
        query = "abcdefghijklmnopqrstuvwx"[:n]
        sim = SimulatedLLM({}, corpus={}, queries={"q": query, "other": "zyxwvutsrqponm"})
        for pad in range(10):
            assert sim._reader.queries_in(normalise("9" * pad + query + "9")) == (["q"] if n >= 8 else [])
