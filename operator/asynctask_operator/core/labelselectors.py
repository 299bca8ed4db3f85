"""Label selectors, equality-based (``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``; comma = and), for readers of a cache.

>>> matches(parse("app=web,!canary"), {"app": "web"}), matches(parse("app!=web"), {"app": "web"})
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

Term = tuple[str, str, str]  # (key, operator "=", "!=", "exists", "!exists"; value)

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def parse(selector: str) -> list[Term]:
    """The terms of a selector; ``ValueError`` naming the term that is not one."""
    terms: list[Term] = []
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            op = "!="
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=", 1).split("=", 1))
            op = "="
        elif term.startswith("!"):
            key, value, op = term[1:].strip(), "", "!exists"
        else:
            key, value, op = term, "", "exists"
        if not _KEY.match(key) or len(key) > 317 or not _VALUE.match(value) or len(value) > 63:
            raise ValueError(f"not a label selector term: {term!r}")
        terms.append((key, op, value))
    return terms


def matches(terms: Sequence[Term], labels: Mapping[str, str]) -> bool:
    for key, op, value in terms:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True
