"""as_backend and the LangChain / LlamaIndex / Haystack LLM adapters.

Each adapter is exercised with the framework's own fake model; the framework packages
are optional, so each group skips when its framework is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerank_rag import LLMConfigurationError, LLMError, LLMTimeoutError
from rerank_rag.llm import CachedLLM, FakeLLM, MemoryCache, as_backend
from rerank_rag.llm._adapt import HaystackLLM, LangChainLLM, LlamaIndexLLM, framework_of

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

MSG = [
    {"role": "system", "content": "You are a ranking assistant."},
    {"role": "user", "content": "Rank [1] and [2]."},
    {"role": "assistant", "content": "Sure."},
    {"role": "user", "content": "Now answer."},
]


# -- as_backend basics -----------------------------------------------------------------


def test_our_backends_pass_through_unchanged():
    fake = FakeLLM(lambda m: "x")
    assert as_backend(fake) is fake
    cached = CachedLLM(fake, MemoryCache())
    assert as_backend(cached) is cached


@pytest.mark.parametrize("bad", [None, "gpt-4o-mini", 42, object()])
def test_unsupported_objects_raise_type_error(bad):
    with pytest.raises(TypeError, match="LangChain|required"):
        as_backend(bad)


def test_string_model_name_gets_a_hint():
    with pytest.raises(TypeError, match=r"OpenAICompatibleLLM\('gpt-4o-mini'"):
        as_backend("gpt-4o-mini")


def test_as_backend_imports_no_framework():
    code = (
        "import sys, json\n"
        "import rerank_rag.llm._adapt as a\n"
        "from rerank_rag.llm import FakeLLM\n"
        "b = a.as_backend(FakeLLM(lambda m: 'x'))\n"
        "assert b.complete('q').text == 'x'\n"
        "try:\n"
        "    a.as_backend(object())\n"
        "except TypeError:\n"
        "    pass\n"
        "mods = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'langchain_core', 'langchain', 'llama_index', 'haystack', 'openai', 'pydantic'})\n"
        "print(json.dumps(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# -- LangChain -------------------------------------------------------------------------


def _recorder():
    from langchain_core.callbacks import BaseCallbackHandler

    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.seen: list[list[tuple[str, str]]] = []

        def on_chat_model_start(self, serialized, messages, **kwargs):
            self.seen.append([(m.type, m.content) for m in messages[0]])

    return Recorder()


def test_langchain_chat_model_roles_text_and_callbacks():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["[2] > [1]", "[1] > [2]"])
    backend = as_backend(model)
    assert isinstance(backend, LangChainLLM) and framework_of(model) == "langchain"
    rec = _recorder()
    out = backend.complete(MSG, callbacks=[rec], max_tokens=5)
    assert out.text == "[2] > [1]"
    assert rec.seen == [
        [
            ("system", MSG[0]["content"]),
            ("human", MSG[1]["content"]),
            ("ai", MSG[2]["content"]),
            ("human", MSG[3]["content"]),
        ]
    ]
    assert out.prompt_tokens > 0 and out.completion_tokens > 0  # estimated (fake reports none)
    out2 = asyncio.run(backend.acomplete(MSG))
    assert out2.text == "[1] > [2]"


def test_langchain_adapter_level_callbacks():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    rec = _recorder()
    backend = LangChainLLM(FakeListChatModel(responses=["ok"]), callbacks=[rec])
    backend.complete("hello")
    asyncio.run(backend.acomplete("again"))
    assert [s[0] for s in rec.seen] == [("human", "hello"), ("human", "again")]


def test_langchain_usage_metadata_is_used():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    msg = AIMessage(
        content="yes", usage_metadata={"input_tokens": 111, "output_tokens": 2, "total_tokens": 113}
    )
    out = as_backend(GenericFakeChatModel(messages=iter([msg]))).complete(MSG)
    assert (out.text, out.prompt_tokens, out.completion_tokens) == ("yes", 111, 2)


def test_langchain_bound_and_retrying_models_are_accepted():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["bound"])
    for wrapped in (
        model.bind(stop=["\n\n"]),
        model.with_retry(stop_after_attempt=2),
        model.with_config(tags=["t"]),
    ):
        backend = as_backend(wrapped)
        assert isinstance(backend, LangChainLLM)
        assert backend.complete(MSG).text == "bound"


def test_langchain_plain_llm_returning_str():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake import FakeListLLM

    out = as_backend(FakeListLLM(responses=["plain"])).complete(MSG)
    assert out.text == "plain"


def test_langchain_stop_is_forwarded_and_errors_are_wrapped():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    calls = []

    class Spy(FakeListChatModel):
        def _call(self, messages, stop=None, run_manager=None, **kwargs):
            calls.append(stop)
            if stop == ["boom"]:
                raise RuntimeError("model exploded")
            return super()._call(messages, stop=stop, run_manager=run_manager, **kwargs)

    backend = as_backend(Spy(responses=["a"]))
    backend.complete(MSG, stop=["\n"])
    assert calls == [["\n"]]
    with pytest.raises(LLMError, match="model exploded") as info:
        backend.complete(MSG, stop=["boom"])
    assert isinstance(info.value.__cause__, RuntimeError)


# -- LlamaIndex ------------------------------------------------------------------------


def _fixed_llama_llm(text: str):
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback

    prompts: list[str] = []

    class FixedLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="fixed-llm")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs):
            prompts.append(prompt)
            return CompletionResponse(text=text)

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            prompts.append(prompt)
            yield CompletionResponse(text=text, delta=text)

    return FixedLLM(), prompts


def test_llama_index_llm_is_detected_before_complete_passthrough():
    pytest.importorskip("llama_index.core")
    llm, prompts = _fixed_llama_llm("[2] > [1]")
    # it HAS complete/acomplete (another signature): must still be adapted
    assert callable(llm.complete) and callable(llm.acomplete)
    backend = as_backend(llm)
    assert isinstance(backend, LlamaIndexLLM) and framework_of(llm) == "llama_index"
    out = backend.complete(MSG)
    assert out.text == "[2] > [1]"
    assert out.model == "fixed-llm"
    prompt = prompts[0]
    for m in MSG:
        assert m["content"] in prompt
    assert prompt.index(MSG[0]["content"]) < prompt.index(MSG[3]["content"])
    assert "system" in prompt.lower()  # roles survived into the chat-to-prompt rendering
    out2 = asyncio.run(backend.acomplete("q"))
    assert out2.text == "[2] > [1]" and out2.prompt_tokens > 0


# -- Haystack --------------------------------------------------------------------------


def test_haystack_mock_chat_generator():
    pytest.importorskip("haystack")
    from haystack.components.generators.chat import MockChatGenerator

    gen = MockChatGenerator(responses="[2] > [1]")
    backend = as_backend(gen)
    assert isinstance(backend, HaystackLLM) and framework_of(gen) == "haystack"
    out = backend.complete(MSG)
    assert out.text == "[2] > [1]"
    assert out.prompt_tokens > 0 and out.completion_tokens > 0
    assert asyncio.run(backend.acomplete(MSG)).text == "[2] > [1]"


def _tracking_component(delay: float = 0.03, fail: BaseException | None = None):
    from haystack import component
    from haystack.dataclasses import ChatMessage

    state = {"active": 0, "peak": 0, "warm": 0, "seen": []}
    lock = threading.Lock()

    @component
    class Tracker:
        def warm_up(self) -> None:
            with lock:
                state["warm"] += 1

        @component.output_types(replies=list[ChatMessage])
        def run(self, messages: list[ChatMessage]):
            with lock:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
                state["seen"].append([(m.role.value, m.text) for m in messages])
            try:
                time.sleep(delay)
                if fail is not None:
                    raise fail
                return {"replies": [ChatMessage.from_assistant(messages[-1].text.upper())]}
            finally:
                with lock:
                    state["active"] -= 1

    return Tracker(), state


def test_haystack_custom_component_roles_warm_up_and_sync_limit():
    pytest.importorskip("haystack")
    comp, state = _tracking_component()
    backend = as_backend(comp, max_concurrency=2)
    assert isinstance(backend, HaystackLLM)
    out = backend.complete(MSG)
    assert out.text == MSG[-1]["content"].upper()
    assert state["seen"][0] == [(m["role"], m["content"]) for m in MSG]
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda i: backend.complete(f"q{i}").text, range(8)))
    assert outs == [f"Q{i}" for i in range(8)]
    assert state["peak"] == 2
    assert state["warm"] == 1  # warmed up once


def test_haystack_async_without_run_async_uses_threads_with_per_loop_limit():
    pytest.importorskip("haystack")
    comp, state = _tracking_component()
    backend = HaystackLLM(comp, max_concurrency=3)

    async def burst():
        return await asyncio.gather(*(backend.acomplete(f"q{i}") for i in range(9)))

    for _ in range(2):  # two separate event loops
        state["peak"] = 0
        outs = asyncio.run(burst())
        assert [o.text for o in outs] == [f"Q{i}" for i in range(9)]
        assert state["peak"] == 3


def test_haystack_errors_are_mapped():
    pytest.importorskip("haystack")
    comp, _ = _tracking_component(delay=0, fail=TimeoutError("slow model"))
    with pytest.raises(LLMTimeoutError, match="slow model"):
        as_backend(comp).complete("q")
    # a model that cannot run (a module missing) is not transient: rankers raise it
    comp, _ = _tracking_component(delay=0, fail=ModuleNotFoundError("No module named 'vllm'"))
    with pytest.raises(LLMConfigurationError, match="vllm") as info:
        as_backend(comp).complete("q")
    assert info.value.transient is False


# -- shared adapter behaviour ------------------------------------------------------------


def test_adapters_describe_themselves_without_secrets():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    backend = as_backend(FakeListChatModel(responses=["x"]), max_concurrency=7)
    assert backend.max_concurrency == 7
    cfg = backend.to_config()
    json.dumps(cfg)
    assert cfg["type"] == "langchain" and cfg["max_concurrency"] == 7
    assert cfg["class"].endswith("FakeListChatModel")
    ident = backend.cache_identity()
    assert ident["backend"] == "langchain"
    json.dumps(ident)


def test_cache_identity_tracks_generation_settings_but_not_secrets():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["x"])
    plain = as_backend(model).cache_identity()
    bound = as_backend(model.bind(temperature=0.7, api_key="sk-hidden")).cache_identity()
    assert bound != plain
    assert bound["params"]["bound_kwargs"] == {"temperature": 0.7}
    assert "sk-hidden" not in json.dumps(bound)


def test_cached_llm_accepts_framework_objects():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    llm = CachedLLM(FakeListChatModel(responses=["first", "second"]), MemoryCache())
    a = llm.complete(MSG)
    b = llm.complete(MSG)
    assert (a.text, b.text, b.cached) == ("first", "first", True)


def test_invalid_max_concurrency_is_rejected():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    with pytest.raises(ValueError):
        LangChainLLM(FakeListChatModel(responses=["x"]), max_concurrency=0)
