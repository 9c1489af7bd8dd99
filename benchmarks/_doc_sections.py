"""Replace one marked section of a generated docs page, leaving the rest alone.

Several benchmark scripts write into ``docs/benchmarks.md``. Each owns the text between
``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``; :func:`replace_section`
rewrites only that span (appending the section at the end when it is not there yet),
and :func:`keep_sections` carries the sections of an old page over into a freshly
generated one, so a script that regenerates the whole page does not drop the others'.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- section:([\w.-]+) -->\n.*?<!-- /section:\1 -->\n?", re.S)


def _wrap(name: str, body: str) -> str:
    return f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"


def replace_section(path: Path, name: str, body: str) -> None:
    """Write ``body`` as section ``name`` of the page at ``path``."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = _wrap(name, body)
    pattern = re.compile(
        rf"<!-- section:{re.escape(name)} -->\n.*?<!-- /section:{re.escape(name)} -->\n?", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    path.write_text(text, encoding="utf-8")


def keep_sections(old_text: str, new_text: str) -> str:
    """``new_text`` plus every marked section of ``old_text`` it does not have."""
    have = {m.group(1) for m in _SECTION.finditer(new_text)}
    extra = [m.group(0) for m in _SECTION.finditer(old_text) if m.group(1) not in have]
    if not extra:
        return new_text
    return new_text.rstrip("\n") + "\n\n" + "\n".join(e.rstrip("\n") + "\n" for e in extra)
