"""Hypothesis strategies for webhook payloads, drawn from GitHub's own JSON schema of each event
(tests/fixtures/webhook-schema, from @octokit/openapi-webhooks; see extract.py there).

Every draw is schema-valid: required properties are always there; an optional one is there or not;
a nullable field is sometimes null; one branch of each anyOf/oneOf is taken; allOf parts are merged.
Strings the work reads as git refs, SHAs or timestamps are drawn from realistic values as well as any
text the schema allows, so the fuzz reaches the judging, not only the receiver.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

SCHEMAS = Path(__file__).parent / "fixtures" / "webhook-schema" / "schemas.json.gz"
DEEP = 6  # past this depth only required properties are drawn, and arrays are empty

shas = st.text("0123456789abcdef", min_size=40, max_size=40) | st.just("0" * 40)
times = st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat() + "Z")
HINTS = {  # property name -> realistic values, drawn besides anything the schema allows
    "ref": st.sampled_from(["refs/heads/main", "refs/heads/feature", "refs/tags/v1.0", "main"]),
    "after": shas, "before": shas, "id": shas, "sha": shas, "merge_commit_sha": shas,
    "full_name": st.sampled_from(["acme/api", "acme/compliance", "Codertocat/Hello-World"]),
    "login": st.sampled_from(["alice", "bob", "dependabot[bot]", "ghost"]),
}


@cache
def schema() -> dict:
    return json.loads(gzip.decompress(SCHEMAS.read_bytes()))


def events() -> dict[str, list[str]]:
    """Each event tbr subscribes to, and the names of its payload schemas (one per action)."""
    return schema()["events"]


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = schema()["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _merge(parts: list[dict]) -> dict:
    """allOf: the parts' properties and required lists together (the schema's allOfs are objects)."""
    merged: dict = {"type": "object", "properties": {}, "required": []}
    for part in map(_resolve, parts):
        part = _merge(part["allOf"]) if "allOf" in part else part
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += part.get("required", [])
    return merged


def _string(node: dict) -> st.SearchStrategy:
    if node.get("format") == "date-time":
        return times
    if node.get("format") in ("uri", "uri-template"):
        return st.just("https://github.com/acme/api")
    if node.get("format") == "email":
        return st.just("alice@example.com")
    return st.text(max_size=12)


def _number(node: dict, integer: bool) -> st.SearchStrategy:
    low, high = node.get("minimum"), node.get("maximum")
    if integer:
        return st.integers(int(low) if low is not None else -(2 ** 31), int(high) if high is not None else 2 ** 53)
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def of(node: dict, depth: int = 0, name: str | None = None) -> st.SearchStrategy:
    """Values valid under schema `node`."""
    node = _resolve(node)
    if "allOf" in node:
        node = {**node, **_merge(node["allOf"])}
        del node["allOf"]
    choices = node.get("anyOf") or node.get("oneOf")
    if choices:
        return st.one_of([of(c, depth, name) for c in choices])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    kinds = node.get("type") or ("object" if "properties" in node else None)
    if kinds is None:  # anything
        return st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    kinds = [kinds] if isinstance(kinds, str) else kinds
    options = []
    for kind in kinds:
        if kind == "null":
            options.append(st.none())
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind in ("integer", "number"):
            options.append(_number(node, kind == "integer"))
        elif kind == "string":
            options.append(HINTS[name] | _string(node) if name in HINTS else _string(node))
        elif kind == "array":
            options.append(_array(node, depth))
        elif kind == "object":
            options.append(_object(node, depth))
    return st.one_of(options)


def _array(node: dict, depth: int) -> st.SearchStrategy:
    if depth >= DEEP or "items" not in node:
        return st.just([])
    return st.lists(st.deferred(lambda: of(node["items"], depth + 1)), max_size=min(node.get("maxItems", 3), 3))


def _object(node: dict, depth: int) -> st.SearchStrategy:
    properties = node.get("properties", {})
    required = [k for k in dict.fromkeys(node.get("required", [])) if k in properties]
    optional = [k for k in properties if k not in required] if depth < DEEP else []

    @st.composite
    def draw(draw_):
        out = {k: draw_(st.deferred(lambda k=k: of(properties[k], depth + 1, k))) for k in required}
        for k in optional:
            if draw_(st.booleans()):
                out[k] = draw_(st.deferred(lambda k=k: of(properties[k], depth + 1, k)))
        return out
    return draw()


def payloads(event: str) -> st.SearchStrategy:
    """Payloads of `event`, any of its actions."""
    return st.one_of([of({"$ref": f"#/definitions/{name}"}) for name in events()[event]])
