"""``SimulatedLLM``: an OpenAI-compatible server that ranks passages by their *true*
relevance plus controlled noise. A tool for comparing orchestration strategies (sliding
windows, single pass, JointRank blocks, ...) under controlled conditions; **not a
model**. Every number measured with it is simulated and must be labelled so.

How it answers one chat-completions request:

1. **Find the passages** (``_sim_reader.PromptReader``). With a
   ``corpus`` (``{docid: text}``), the simulator finds which known passages appear in the
   prompt, in order, by matching a normalised prefix (lower-case ASCII letters and digits
   only, so whitespace, punctuation, mojibake and in-passage ``[3]`` -> ``(3)`` rewriting
   do not matter) of each passage, and reads the label shown before each one (``[3]``,
   ``[C]``, ``Snippet 3``, ``Passage C``; the 1-based position when there is none).
   Without a corpus (a relevance function), passages are read from lines shaped
   ``[label] text``.
2. **Find the query** (with qrels): the judged query whose text appears in the prompt,
   preferring the one that judged the passages found.
3. **Score** each of the ``m`` passages shown::

       s_i = grade_i + doc_noise_i + window_noise_i + position_bias * (1 - pos_i / (m - 1))

   ``window_noise_i ~ N(0, noise**2 * (1 + noise_growth * (m - 1)))``: the variance grows
   with the number of passages shown ("long lists degrade quality"); ``doc_noise_i ~
   N(0, doc_noise**2)`` is a persistent per-(query, passage) misjudgement that
   repeated views cannot average away. Noise is deterministic per ``seed`` and request
   content (same window, same answer, like temperature 0).
4. **Answer in the format asked**:

   * ``logprobs`` requested and one passage with a Yes/No question: ``Yes``/``No`` with
     first-token ``top_logprobs`` from ``sigmoid(yes_no_scale * (s - relevant_threshold))``;
   * ``logprobs`` requested (FIRST-style): the best label, with ``top_logprobs`` =
     ``log softmax(s / logprob_temperature)`` over the labels;
   * the prompt mentions ``NO_RELEVANT``: only passages with ``s >= relevant_threshold``,
     best first (``[2] > [5]``), or ``NO_RELEVANT_SNIPPETS``;
   * otherwise the full permutation ``[2] > [1] > ...`` (RankGPT).

   A prompt where no passage is found goes to ``fallback(body)`` (default: ``""``).
5. **Latency**: ``per_call + per_input_token * prompt_tokens + per_output_token *
   completion_tokens`` seconds (tokens estimated like :func:`rerank_rag.testing.
   estimate_tokens`, about 4 characters per token, and reported in ``usage``), served
   with ``max_concurrency`` requests at a time (others queue).
6. **Faults** at configured rates (:class:`FaultConfig`): 429 with ``Retry-After``, 500,
   timeouts (the reply is delayed past the client's timeout), connection resets, empty
   and truncated replies. Fault draws are sequential per server (a retry of the same
   request draws again).

Use it as a context manager; ``base_url`` points an OpenAI-compatible client at it::

    with SimulatedLLM(qrels, corpus=texts, queries=topics, seed=1) as sim:
        llm = sim.client(max_concurrency=8)   # an OpenAICompatibleLLM
        ...
    sim.stats  # requests, faults injected, tokens, peak concurrency
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union

from ..testing import ChatServer, Reply, estimate_tokens
from ._sim_config import DEFAULT_PRESET, PRESETS, FaultConfig, LatencyModel, SimPreset, get_preset
from ._sim_reader import PromptReader, _Found, _flatten, _last_user, normalise

__all__ = [
    "SimulatedLLM",
    "LatencyModel",
    "FaultConfig",
    "SimPreset",
    "PRESETS",
    "DEFAULT_PRESET",
    "get_preset",
    "SIMULATED_LABEL",
    "normalise",
]

#: The label every figure produced with the simulator must carry.
SIMULATED_LABEL = "simulated"

_YES_NO_RE = re.compile(r"\byes\b.{0,40}\bno\b", re.I | re.S)


@dataclass
class _Stats:
    requests: int = 0
    answered: int = 0
    unrecognised: int = 0
    passages_seen: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    simulated_service_seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FaultConfig.KINDS})
    formats: dict[str, int] = field(default_factory=dict)


Judgments = Union[Mapping[str, Mapping[str, int]], Callable[[str, str], float]]


class SimulatedLLM:
    """An OpenAI-compatible chat server on 127.0.0.1 that ranks by true relevance + noise.

    Settings start from a named preset (:data:`~rerank_rag.eval.PRESETS`; default
    ``"dl19"``, fitted to published DL19 figures, see docs/evaluation.md); any setting
    given here overrides the preset's. ``rerank-rag eval --llm sim`` starts from the same
    presets, so both agree by construction.

    Args:
        judgments: qrels ``{qid: {docid: grade}}`` (then ``corpus`` is required), or a
            function ``relevance(query_text, passage_text) -> float`` used as the grade.
        corpus: ``{docid: text}`` of every passage that may be shown.
        queries: ``{qid: query text}``, to tell which query a prompt is about (without
            it, a passage's grade is its highest grade over all queries).
        preset: a preset name or :class:`SimPreset` (default ``"dl19"``).
        noise: base standard deviation of the per-view noise (in grade units).
        noise_growth: variance multiplier per extra passage shown:
            ``var = noise**2 * (1 + noise_growth * (m - 1))``.
        doc_noise: standard deviation of a persistent per-(query, passage) error.
        position_bias: bonus for earlier positions, ``position_bias * (1 - pos/(m-1))``.
        relevant_threshold: score above which a passage counts as relevant (for
            relevant-only answers and Yes/No).
        latency: a :class:`LatencyModel`.
        max_concurrency: requests served at once (others queue); ``None``: unlimited.
        faults: a :class:`FaultConfig`.
        seed: makes noise, jitter and fault draws reproducible.
        model: the model name reported.
        fallback: ``fallback(body) -> str | Reply`` for prompts showing no known
            passage (default: an empty answer).
        prefix_chars: normalised prefix length used to look passages up.
        min_match_chars: a passage counts as shown only if at least this many
            normalised characters of it (or all of it) appear; shorter coincidences
            (a query that starts like a passage, an id glued to a passage starting
            with a number) are ignored. Passages truncated to fewer than about ten
            words are therefore not recognised.
        logprob_temperature: softness of FIRST-style first-token logprobs.
        yes_no_scale: slope of the Yes/No log-odds.

    Attributes:
        preset: the :class:`SimPreset` the settings started from.
        label: ``"simulated (preset dl19)"``, with the overridden settings when any
            differ from the preset's: what every figure made with it must carry.
    """

    def __init__(
        self,
        judgments: Judgments,
        *,
        corpus: Mapping[str, str] | None = None,
        queries: Mapping[str, str] | None = None,
        preset: str | SimPreset | None = None,
        noise: float | None = None,
        noise_growth: float | None = None,
        doc_noise: float | None = None,
        position_bias: float | None = None,
        relevant_threshold: float | None = None,
        latency: LatencyModel | None = None,
        max_concurrency: int | None = None,
        faults: FaultConfig | None = None,
        seed: int = 0,
        model: str = "simulated-llm",
        fallback: Callable[[dict[str, Any]], str | Reply] | None = None,
        prefix_chars: int = 24,
        min_match_chars: int = 48,
        logprob_temperature: float = 1.0,
        yes_no_scale: float = 2.0,
    ) -> None:
        self.preset = get_preset(preset)
        given = {
            "noise": noise,
            "noise_growth": noise_growth,
            "doc_noise": doc_noise,
            "position_bias": position_bias,
            "relevant_threshold": relevant_threshold,
            "latency": latency,
        }
        base = self.preset.settings()
        self.overrides = {k: v for k, v in given.items() if v is not None and v != base[k]}
        merged = {k: (base[k] if v is None else v) for k, v in given.items()}
        noise, noise_growth, doc_noise = merged["noise"], merged["noise_growth"], merged["doc_noise"]
        position_bias, relevant_threshold = merged["position_bias"], merged["relevant_threshold"]
        latency = merged["latency"]
        for name, v in (("noise", noise), ("noise_growth", noise_growth), ("doc_noise", doc_noise)):
            if not isinstance(v, (int, float)) or v < 0 or math.isnan(v):
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")
        if prefix_chars < 8:
            raise ValueError("prefix_chars must be at least 8")
        if logprob_temperature <= 0:
            raise ValueError("logprob_temperature must be positive")
        if callable(judgments) and not isinstance(judgments, Mapping):
            self._relevance: Callable[[str, str], float] | None = judgments
            self._qrels: dict[str, dict[str, int]] = {}
        elif isinstance(judgments, Mapping):
            if corpus is None:
                raise ValueError("SimulatedLLM with qrels needs corpus={docid: text} to recognise passages")
            self._relevance = None
            self._qrels = {str(q): {str(d): int(g) for d, g in j.items()} for q, j in judgments.items()}
        else:
            raise TypeError("judgments must be qrels {qid: {docid: grade}} or a function (query, passage) -> grade")
        self.noise = float(noise)
        self.noise_growth = float(noise_growth)
        self.doc_noise = float(doc_noise)
        self.position_bias = float(position_bias)
        self.relevant_threshold = float(relevant_threshold)
        self.latency = latency if isinstance(latency, LatencyModel) else LatencyModel()
        self.max_concurrency = max_concurrency
        self.faults = faults or FaultConfig()
        self.seed = int(seed)
        self.model = model
        self.fallback = fallback
        self.prefix_chars = int(prefix_chars)
        self.min_match_chars = max(int(min_match_chars), self.prefix_chars)
        self.logprob_temperature = float(logprob_temperature)
        self.yes_no_scale = float(yes_no_scale)

        self._reader = PromptReader(
            corpus,
            queries,
            self._qrels,
            prefix_chars=self.prefix_chars,
            min_match_chars=self.min_match_chars,
            keep_text=self._relevance is not None,
        )

        self._lock = threading.Lock()
        self._fault_rng = random.Random(self.seed)
        self._stats = _Stats()
        self._server: ChatServer | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> SimulatedLLM:
        if self._server is None:
            self._server = ChatServer(self.respond, model=self.model, max_concurrency=self.max_concurrency)
            self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    close = stop

    def __enter__(self) -> SimulatedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        return (
            f"SimulatedLLM({state}, preset={self.preset.name!r}, noise={self.noise}, "
            f"noise_growth={self.noise_growth}, doc_noise={self.doc_noise}, "
            f"position_bias={self.position_bias}, seed={self.seed})"
        )

    @property
    def label(self) -> str:
        """``"simulated (preset NAME)"``, plus the settings that differ from the preset."""
        if not self.overrides:
            return f"{SIMULATED_LABEL} (preset {self.preset.name})"
        changed = ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.overrides.items()))
        return f"{SIMULATED_LABEL} (preset {self.preset.name}, modified: {changed})"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` of the running server."""
        if self._server is None:
            raise RuntimeError("SimulatedLLM is not running: use it as a context manager or call start()")
        return self._server.base_url

    @property
    def server(self) -> ChatServer:
        if self._server is None:
            raise RuntimeError("SimulatedLLM is not running")
        return self._server

    def client(self, **kw: Any) -> Any:
        """An :class:`~rerank_rag.llm.OpenAICompatibleLLM` pointed at this server."""
        from ..llm._openai import OpenAICompatibleLLM

        kw.setdefault("api_key", "simulated")
        return OpenAICompatibleLLM(self.model, base_url=self.base_url, **kw)

    def config(self) -> dict[str, Any]:
        """JSON-able settings (for reports)."""
        return {
            "label": SIMULATED_LABEL,
            "preset": self.preset.name,
            "preset_modified": sorted(self.overrides),
            "description": self.label,
            "noise": self.noise,
            "noise_growth": self.noise_growth,
            "doc_noise": self.doc_noise,
            "position_bias": self.position_bias,
            "relevant_threshold": self.relevant_threshold,
            "latency": asdict(self.latency),
            "max_concurrency": self.max_concurrency,
            "faults": {k: v for k, v in asdict(self.faults).items()},
            "seed": self.seed,
        }

    def in_process_llm(self, *, max_concurrency: int = 8) -> Any:
        """A :class:`~rerank_rag.FakeLLM` answering through :meth:`respond` in this
        process: same answers as over HTTP, without the server, the latency waits or the
        client. Injected faults raise :class:`~rerank_rag.LLMError` (transient). For
        fast sweeps (the calibration of the presets); figures are simulated all the same.
        """
        from .._errors import LLMError
        from ..llm._base import Completion
        from ..llm._fake import FakeLLM

        def handler(messages: Any, **params: Any) -> Completion:
            body = {"model": self.model, "messages": [dict(m) for m in messages], **params}
            reply = self.respond(body)
            if reply.reset or reply.status >= 400:
                raise LLMError(f"simulated fault (status {reply.status}, reset={reply.reset})", status=reply.status)
            return Completion(
                text=reply.text,
                prompt_tokens=reply.prompt_tokens or 0,
                completion_tokens=reply.completion_tokens or 0,
                top_logprobs=reply.top_logprobs if body.get("logprobs") else None,
                model=self.model,
            )

        return FakeLLM(handler, max_concurrency=max_concurrency, name=self.model)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: requests, answered, unrecognised prompts, faults per kind, tokens,
        simulated service seconds, answer formats, and the server's peak concurrency."""
        with self._lock:
            s = asdict(self._stats)
        s["peak_concurrency"] = self._server.peak_concurrency if self._server is not None else None
        s["label"] = SIMULATED_LABEL
        s["preset"] = self.preset.name
        return s

    # -- request handling ----------------------------------------------------------------
    def respond(self, body: dict[str, Any]) -> Reply:
        """Answer one chat-completions request body (the server's handler; usable directly)."""
        with self._lock:
            self._stats.requests += 1
            fault = self._draw_fault()
        if fault == "429":
            return Reply(status=429, text="rate limited (simulated)", headers={"Retry-After": _fmt(self.faults.retry_after)})
        if fault == "500":
            return Reply(status=500, text="internal error (simulated)")
        if fault == "reset":
            return Reply(reset=True)

        messages = body.get("messages") or []
        prompt = _flatten(messages)
        prompt_tokens = estimate_tokens(prompt) + 3 * len(messages)
        fmt, text, top = self._answer(body, prompt)
        if fmt == "unrecognised":
            if self.fallback is not None:
                fb = self.fallback(body)
                if isinstance(fb, Reply):
                    return fb
                text = str(fb)
        if fault == "empty":
            text, top = "", None
        elif fault == "truncated":
            text, top = text[: len(text) // 2], None
        completion_tokens = estimate_tokens(text)
        u = self._unit(("jitter", prompt)) * 2.0 - 1.0
        delay = self.latency.seconds(prompt_tokens, completion_tokens, u)
        with self._lock:
            self._stats.answered += 1
            self._stats.prompt_tokens += prompt_tokens
            self._stats.completion_tokens += completion_tokens
            self._stats.simulated_service_seconds += delay
            self._stats.formats[fmt] = self._stats.formats.get(fmt, 0) + 1
            if fmt == "unrecognised":
                self._stats.unrecognised += 1
        if fault == "timeout":
            delay = max(delay, self.faults.timeout_delay)
        return Reply(
            text=text,
            delay=delay,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            top_logprobs=top,
            finish_reason="length" if fault == "truncated" else "stop",
        )

    def _draw_fault(self) -> str | None:
        rates = self.faults.rates()
        if not any(rates.values()):
            return None
        injected = sum(self._stats.faults.values())
        if self.faults.max_faults is not None and injected >= self.faults.max_faults:
            return None
        u = self._fault_rng.random()
        acc = 0.0
        for kind, r in rates.items():
            acc += r
            if u < acc:
                self._stats.faults[kind] += 1
                return kind
        return None

    # -- the simulated judgement ---------------------------------------------------------
    def _answer(self, body: dict[str, Any], prompt: str) -> tuple[str, str, dict[str, float] | None]:
        found, qid, query_text = self._reader.find(prompt)
        if not found:
            return "unrecognised", "", None
        with self._lock:
            self._stats.passages_seen += len(found)
        scores = self._scores(found, qid, query_text, prompt)
        order = sorted(range(len(found)), key=lambda i: (-scores[i], i))
        wants_logprobs = bool(body.get("logprobs")) or body.get("top_logprobs") is not None
        last = _last_user(body.get("messages") or []) or prompt[-600:]
        if len(found) == 1 and _YES_NO_RE.search(last):
            logit = self.yes_no_scale * (scores[0] - self.relevant_threshold)
            text = "Yes" if logit >= 0 else "No"
            top = {"Yes": -_softplus(-logit), "No": -_softplus(logit)} if wants_logprobs else None
            return "yes-no", text, top
        labels = [f.label for f in found]
        if wants_logprobs or body.get("max_tokens") == 1:
            t = self.logprob_temperature
            z = [s / t for s in scores]
            mx = max(z)
            lse = mx + math.log(sum(math.exp(v - mx) for v in z))
            top = {}
            for i in order:
                top.setdefault(labels[i], z[i] - lse)
            return "first-token", labels[order[0]], (top if wants_logprobs else None)
        bracketed = sum(f.bracketed for f in found) * 2 >= len(found)
        fmt_label = (lambda s: f"[{s}]") if bracketed else (lambda s: s)
        sep = " > " if bracketed else " "
        if "NO_RELEVANT" in last.upper():
            chosen = [i for i in order if scores[i] >= self.relevant_threshold]
            if not chosen:
                return "relevant-only", "NO_RELEVANT_SNIPPETS", None
            return "relevant-only", sep.join(fmt_label(labels[i]) for i in chosen), None
        return "permutation", sep.join(fmt_label(labels[i]) for i in order), None

    def _scores(self, found: Sequence[_Found], qid: str | None, query_text: str, prompt: str) -> list[float]:
        m = len(found)
        sd = self.noise * math.sqrt(1.0 + self.noise_growth * (m - 1))
        window_key = "\x1f".join(f.key for f in found)
        out: list[float] = []
        for pos, f in enumerate(found):
            if self._relevance is not None:
                grade = float(self._relevance(query_text, f.text))
            elif qid is not None:
                grade = float(self._qrels.get(qid, {}).get(f.key, 0))
            else:
                grade = float(max((self._qrels[q].get(f.key, 0) for q in self._reader.doc_qids.get(f.key, ())), default=0))
            s = grade
            if sd > 0:
                s += sd * self._gauss(("view", qid or query_text, window_key, pos, f.key))
            if self.doc_noise > 0:
                s += self.doc_noise * self._gauss(("doc", qid or query_text, f.key))
            if self.position_bias and m > 1:
                s += self.position_bias * (1.0 - pos / (m - 1))
            out.append(s)
        return out

    def _unit(self, key: tuple[Any, ...]) -> float:
        h = hashlib.blake2b(repr((self.seed, key)).encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return (struct.unpack("<Q", h)[0] >> 11) / float(1 << 53)

    def _gauss(self, key: tuple[Any, ...]) -> float:
        # Box-Muller from two hash-derived uniforms: deterministic per key
        u1 = max(self._unit(key + ("u1",)), 1e-12)
        u2 = self._unit(key + ("u2",))
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _short(v: Any) -> str:
    if isinstance(v, LatencyModel):
        return f"latency({v.per_call:g},{v.per_input_token:g},{v.per_output_token:g})"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3f}"
