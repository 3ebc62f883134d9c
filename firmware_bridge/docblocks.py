"""Generated blocks inside hand-written Markdown documents.

A document keeps generated text between ``<!-- generated: NAME -->`` and
``<!-- end: NAME -->`` markers; tests compare each block with its renderer, and
``refresh`` rewrites them (``docs/headers.md``, ``docs/register-map.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping


def block(doc: str, name: str) -> str | None:
    """The text between the markers of block ``name`` in ``doc``."""
    m = re.search(rf"<!-- generated: {name} -->\n(.*?)<!-- end: {name} -->", doc, re.S)
    return m.group(1) if m else None


def refresh(doc: str, generated: Mapping[str, Callable[[], str]]) -> str:
    """``doc`` with every block it has re-rendered."""
    for name, render in generated.items():
        begin, end = f"<!-- generated: {name} -->\n", f"<!-- end: {name} -->"
        head, found, rest = doc.partition(begin)
        if found:
            doc = head + begin + render() + end + rest.partition(end)[2]
    return doc
