"""Settings of the LLM simulator: latency, faults, and the named presets.

Every default of :class:`~rerank_rag.eval.SimulatedLLM` and of ``rerank-rag eval
--llm sim`` lives here, in :data:`PRESETS`: the constructor and the command line both
start from :data:`DEFAULT_PRESET` and override only what they are given.

A preset is the *judgement model* (how noisy the simulated LLM is, how that noise
grows with the number of passages shown, its bias towards early positions) plus a
latency model. Figures produced with a preset are simulated and carry its name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LatencyModel", "FaultConfig", "SimPreset", "PRESETS", "DEFAULT_PRESET", "get_preset"]


@dataclass(frozen=True)
class LatencyModel:
    """Simulated service time of one call, in seconds.

    ``per_call + per_input_token * prompt_tokens + per_output_token * completion_tokens``,
    multiplied by ``1 + jitter * u`` with ``u`` uniform in [-1, 1] (deterministic per
    request content and seed).
    """

    per_call: float = 0.0
    per_input_token: float = 0.0
    per_output_token: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("per_call", "per_input_token", "per_output_token", "jitter"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0 or math.isnan(v):
                raise ValueError(f"LatencyModel.{name} must be a non-negative number, got {v!r}")
        if self.jitter > 1:
            raise ValueError("LatencyModel.jitter must be at most 1")

    def seconds(self, prompt_tokens: int, completion_tokens: int, u: float = 0.0) -> float:
        base = self.per_call + self.per_input_token * prompt_tokens + self.per_output_token * completion_tokens
        return max(0.0, base * (1.0 + self.jitter * u))


@dataclass(frozen=True)
class FaultConfig:
    """Fault injection rates (each a probability per request; their sum must be <= 1).

    Attributes:
        rate_429: answer HTTP 429 with ``Retry-After: retry_after``.
        rate_500: answer HTTP 500.
        rate_timeout: delay the (normal) answer by ``timeout_delay`` seconds, which
            should exceed the client's timeout.
        rate_reset: close the connection without answering.
        rate_empty: answer 200 with an empty message.
        rate_truncated: answer 200 with the first half of the normal message.
        retry_after: seconds sent in ``Retry-After`` with a 429.
        timeout_delay: how long a "timeout" reply is held.
        max_faults: stop injecting after this many faults (``None``: no limit); with
            rate 1.0 this makes "the first N requests fail" deterministic.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_reset: float = 0.0
    rate_empty: float = 0.0
    rate_truncated: float = 0.0
    retry_after: float = 1.0
    timeout_delay: float = 30.0
    max_faults: int | None = None

    KINDS = ("429", "500", "timeout", "reset", "empty", "truncated")

    def __post_init__(self) -> None:
        rates = self.rates()
        for kind, r in rates.items():
            if not isinstance(r, (int, float)) or not 0.0 <= r <= 1.0:
                raise ValueError(f"FaultConfig rate for {kind} must be in [0, 1], got {r!r}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"FaultConfig rates add up to {sum(rates.values()):.3f} > 1")
        if self.retry_after < 0 or self.timeout_delay < 0:
            raise ValueError("retry_after and timeout_delay must be >= 0")
        if self.max_faults is not None and self.max_faults < 0:
            raise ValueError("max_faults must be >= 0 or None")

    def rates(self) -> dict[str, float]:
        return {
            "429": self.rate_429,
            "500": self.rate_500,
            "timeout": self.rate_timeout,
            "reset": self.rate_reset,
            "empty": self.rate_empty,
            "truncated": self.rate_truncated,
        }

    @classmethod
    def uniform(cls, rate: float, **kw: Any) -> FaultConfig:
        """Total fault ``rate`` spread evenly over the six kinds."""
        r = rate / 6.0
        return cls(rate_429=r, rate_500=r, rate_timeout=r, rate_reset=r, rate_empty=r, rate_truncated=r, **kw)


@dataclass(frozen=True)
class SimPreset:
    """A named set of simulator settings.

    Attributes:
        name: what figures produced with it are labelled with.
        description: one line: what it is for.
        noise: per-view noise s.d. in grade units (one answer of the simulated LLM).
        noise_growth: variance growth per extra passage shown in one prompt:
            ``var = noise**2 * (1 + noise_growth * (m - 1))``.
        doc_noise: s.d. of a persistent per-(query, passage) misjudgement that repeated
            views cannot average away.
        position_bias: bonus for earlier positions in a prompt,
            ``position_bias * (1 - pos / (m - 1))``.
        relevant_threshold: score from which a passage counts as relevant
            (relevant-only answers, Yes/No).
        latency: the simulated service time per call.
        calibration: for a fitted preset: the published targets, the fitted values and
            the residuals (see docs/evaluation.md); empty otherwise.
    """

    name: str
    description: str
    noise: float
    noise_growth: float
    doc_noise: float
    position_bias: float
    relevant_threshold: float = 0.5
    latency: LatencyModel = field(default_factory=LatencyModel)
    calibration: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("noise", "noise_growth", "doc_noise"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0 or math.isnan(v):
                raise ValueError(f"SimPreset.{name} must be a non-negative number, got {v!r}")

    def settings(self) -> dict[str, Any]:
        """The judgement and latency settings as constructor keywords."""
        return {
            "noise": self.noise,
            "noise_growth": self.noise_growth,
            "doc_noise": self.doc_noise,
            "position_bias": self.position_bias,
            "relevant_threshold": self.relevant_threshold,
            "latency": self.latency,
        }

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["calibration"] = dict(self.calibration)
        return d


#: Published DL19 (BM25 top-100) nDCG@10 figures the ``dl19`` preset is fitted to.
DL19_TARGETS: dict[str, tuple[float, str]] = {
    "single": (0.5768, "full-context listwise, one call over 100 passages; JointRank paper (arXiv 2506.22262), gpt-4.1-mini"),
    "jointrank": (0.7088, "JointRank, one round of blocks; JointRank paper (arXiv 2506.22262), gpt-4.1-mini"),
    "sliding": (0.7345, "RankGPT sliding window 20/10; rank_llm 2CR reproduction, gpt-4o-mini"),
}

PRESETS: dict[str, SimPreset] = {
    p.name: p
    for p in (
        SimPreset(
            name="dl19",
            description=(
                "fitted to published DL19 BM25 top-100 nDCG@10 (single pass 0.577, JointRank 0.709, "
                "sliding window 0.735; gpt-4.1-mini / gpt-4o-mini); no latency"
            ),
            noise=1.37,
            noise_growth=0.00192,
            doc_noise=0.0,
            position_bias=0.0,
            # benchmarks/calibrate_simulator.py; see docs/evaluation.md
            calibration={
                "fit": "quadratic response surfaces over sd(20) x position_bias (20 points) and sd(100) "
                "(8 points), 6 seeds per point; doc_noise 0 and relevant_threshold 0.5 fixed",
                "targets": {m: t for m, (t, _) in DL19_TARGETS.items()},
                "simulated": {"single": 0.5785, "jointrank": 0.7329, "sliding": 0.7157},
                "residuals": {"single": 0.0017, "jointrank": 0.0241, "sliding": -0.0188},
                "sd_over_seeds": {"single": 0.0149, "jointrank": 0.0109, "sliding": 0.0126},
                "seeds": "20: 0-9 and 1000-1009 (simulator and JointRank design seed)",
            },
        ),
        SimPreset(
            name="exact",
            description="noise-free: ranks by the judged grades (ties by position); for tests and ceilings",
            noise=0.0,
            noise_growth=0.0,
            doc_noise=0.0,
            position_bias=0.0,
        ),
        SimPreset(
            name="v0.1",
            description=(
                "the 0.1 command-line defaults (not calibrated), with a hosted-API latency model; "
                "reproduces figures made before the presets"
            ),
            noise=0.8,
            noise_growth=0.02,
            doc_noise=0.3,
            position_bias=0.0,
            latency=LatencyModel(per_call=0.3, per_input_token=0.0002, per_output_token=0.015),
        ),
    )
}

#: The preset ``SimulatedLLM()`` and ``rerank-rag eval --llm sim`` start from.
DEFAULT_PRESET = "dl19"


def get_preset(preset: str | SimPreset | None = None) -> SimPreset:
    """The :class:`SimPreset` named ``preset`` (``None``: the default); ``ValueError`` lists the names."""
    if isinstance(preset, SimPreset):
        return preset
    key = DEFAULT_PRESET if preset is None else str(preset).strip().lower()
    try:
        return PRESETS[key]
    except KeyError:
        raise ValueError(f"unknown simulator preset {preset!r}; choose one of: {', '.join(PRESETS)}") from None
