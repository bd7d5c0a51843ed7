"""``sof graph --format dot|mermaid`` gives well-formed output whatever the names and keys.

Before: DOT escaped quotes in node names but not in edge labels (``[label="k"q"]``), nor
backslashes anywhere (a name ending in ``\\`` ended its string early); Mermaid escaped
nothing (``s0["Say "hi""]``, ``-->|k"q|``). Both outputs are parsed back here with the
formats' own quoting rules and must give every name and key exactly.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from sof_core import BaseSkillModule
from sof_core.graph.build import build_graph, to_dot, to_mermaid
from sof_core.skills.spec import SkillSpec

NAMES = [
    'Say "hi"',
    "back\\slash\\",
    "two  spaces",  # (a line break cannot be in a skill name; the key "h\ni" has one)
    "pipe|and<tag>&amp;",
    "hash #35; and `tick`",
    "brackets [x] (y) {z}",
    "end",
]
KEYS = ['k"q', "a|b", "c<d>", "e#f;", "g\\", "h\ni", "`j`", "k]l"]


def _skill(name: str, inputs: list[str], outputs: list[str]) -> SkillSpec:
    cls = type("S", (BaseSkillModule,), {
        "skill_name": name, "skill_description": "a skill with an awkward name",
        "required_inputs": inputs, "output_keys": outputs,
        "execute": lambda self, uif: uif,
    })
    return SkillSpec.from_skill_class(cls)


def _graph() -> tuple[Any, list[list[str]], dict[tuple[str, str], list[str]]]:
    """A chain through every awkward name, each hop carrying some awkward keys, plus the
    brief's own case: 'Say "hi"' writes k"q, which 'Bee' reads."""
    specs = []
    edges: dict[tuple[str, str], list[str]] = {}
    previous: list[str] = ["input_query"]
    for i, name in enumerate(NAMES):
        outputs = [KEYS[i % len(KEYS)], f"{KEYS[(i + 1) % len(KEYS)]}{i}"]
        specs.append(_skill(name, previous, outputs))
        if i:
            edges[(NAMES[i - 1], name)] = previous
        previous = outputs
    specs.append(_skill("Bee", previous, ["done"]))
    edges[(NAMES[-1], "Bee")] = previous
    stages = [[name] for name in [*NAMES, "Bee"]]
    return build_graph(specs), stages, edges


# --- DOT -----------------------------------------------------------------------------------

_DOT_TOKEN = re.compile(r'\s*(?:(?P<str>")|(?P<arrow>->)|(?P<punct>[{}\[\];=])|(?P<id>\w+))')


def _dot_tokens(text: str) -> list[tuple[str, str]]:
    """DOT's lexer: IDs, punctuation, and quoted strings in which (as in Graphviz's scanner)
    ``\\"`` is a quote and ``\\\\`` a kept pair; anything else is an error."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _DOT_TOKEN.match(text, at)
        assert match is not None, f"unexpected DOT text at {text[at:at + 30]!r}"
        at = match.end()
        if match.group("str"):
            chars = []
            while True:
                assert at < len(text), "unterminated DOT string"
                char = text[at]
                if char == "\\" and text[at + 1:at + 2] == '"':
                    chars.append('"')
                    at += 2
                elif char == "\\" and text[at + 1:at + 2] == "\\":
                    chars.append("\\\\")
                    at += 2
                elif char == '"':
                    at += 1
                    break
                else:
                    assert char != "\n", "a raw line break inside a DOT string"
                    chars.append(char)
                    at += 1
            tokens.append(("str", "".join(chars)))
        else:
            kind = next(k for k in ("arrow", "punct", "id") if match.group(k))
            tokens.append((kind, match.group(kind)))
    return tokens


def _dot_label(raw: str) -> str:
    """What Graphviz draws for a string: ``\\\\`` is a backslash, ``\\n`` a line break."""
    return re.sub(r"\\(.)", lambda m: {"\\": "\\", "n": "\n"}.get(m.group(1), m.group(0)), raw)


def _parse_dot(text: str) -> tuple[list[str], dict[tuple[str, str], str]]:
    tokens = _dot_tokens(text)
    pos = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal pos
        assert pos < len(tokens), f"DOT ended early, wanted {kind}"
        got_kind, got = tokens[pos]
        assert got_kind == kind and (value is None or got == value), (
            f"wanted {kind} {value!r}, got {got_kind} {got!r}")
        pos += 1
        return got

    def peek(offset: int = 0) -> tuple[str, str]:
        return tokens[pos + offset] if pos + offset < len(tokens) else ("eof", "")

    nodes: list[str] = []
    edges: dict[tuple[str, str], str] = {}

    def statements() -> None:
        while peek() != ("punct", "}"):
            kind, value = peek()
            if kind == "id" and value == "subgraph":
                take("id")
                take("id")
                take("punct", "{")
                statements()
                take("punct", "}")
            elif kind == "id" and value == "node":
                take("id")
                take("punct", "[")
                take("id")
                take("punct", "=")
                take("id")
                take("punct", "]")
                take("punct", ";")
            elif kind == "id":
                take("id")
                take("punct", "=")
                if peek()[0] == "str":
                    take("str")
                else:
                    take("id")
                take("punct", ";")
            elif peek(1)[0] == "arrow":
                source = take("str")
                take("arrow")
                target = take("str")
                take("punct", "[")
                take("id", "label")
                take("punct", "=")
                edges[(_dot_label(source), _dot_label(target))] = _dot_label(take("str"))
                take("punct", "]")
                take("punct", ";")
            else:
                nodes.append(_dot_label(take("str")))
                take("punct", ";")

    take("id", "digraph")
    take("id")
    take("punct", "{")
    statements()
    take("punct", "}")
    assert pos == len(tokens), "text after the graph"
    return nodes, edges


def test_dot_output_parses_and_gives_every_name_and_key_back() -> None:
    graph, stages, edges = _graph()
    nodes, drawn = _parse_dot(to_dot(graph, stages))
    assert nodes == [*NAMES, "Bee"]
    assert drawn == {pair: ", ".join(keys) for pair, keys in edges.items()}


def test_dot_edge_label_quote_is_escaped() -> None:
    graph = build_graph([_skill('Say "hi"', ["input_query"], ['k"q']),
                         _skill("Bee", ['k"q'], ["done"])])
    dot = to_dot(graph, [['Say "hi"'], ["Bee"]])
    assert '"Say \\"hi\\"" -> "Bee" [label="k\\"q"];' in dot


# --- Mermaid -------------------------------------------------------------------------------

#: A quoted Mermaid label as SOF writes it: no quote, pipe, angle bracket, ampersand,
#: backquote or line break of its own; ``#`` only in an entity code; ``<br>`` for a break.
_LABEL = r'(?:[^"#|<>&`\n]|#(?:quot|lt|gt|amp|\d+);|<br>)*'
_MERMAID_LINES = [
    re.compile(r"flowchart LR"),
    re.compile(r'  subgraph stage\d+\["stage \d+"\]'),
    re.compile(rf'    (?P<node>s\d+)\["(?P<label>{_LABEL})"\]'),
    re.compile(r"  end"),
    re.compile(rf'  (?P<source>s\d+) -->\|"(?P<edge>{_LABEL})"\| (?P<target>s\d+)'),
]
_ENTITIES = {"quot": '"', "lt": "<", "gt": ">", "amp": "&"}


def _mermaid_label(text: str) -> str:
    """What Mermaid shows for a label: entity codes decoded, ``<br>`` a line break."""
    text = text.replace("<br>", "\n")
    return re.sub(
        r"#(\w+);",
        lambda m: chr(int(m.group(1))) if m.group(1).isdigit() else _ENTITIES[m.group(1)],
        text,
    )


def _parse_mermaid(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    assert text.endswith("\n")
    nodes: dict[str, str] = {}
    edges: dict[tuple[str, str], str] = {}
    for line in text[:-1].split("\n"):
        match = next((m for p in _MERMAID_LINES if (m := p.fullmatch(line))), None)
        assert match is not None, f"not a well-formed Mermaid line: {line!r}"
        found = match.groupdict()
        if found.get("node"):
            nodes[found["node"]] = _mermaid_label(found["label"])
        if found.get("edge") is not None:
            edges[(found["source"], found["target"])] = _mermaid_label(found["edge"])
    return nodes, edges


def test_mermaid_output_is_well_formed_and_gives_every_name_and_key_back() -> None:
    graph, stages, edges = _graph()
    nodes, drawn = _parse_mermaid(to_mermaid(graph, stages))
    assert list(nodes.values()) == [*NAMES, "Bee"]
    assert {(nodes[a], nodes[b]): label for (a, b), label in drawn.items()} == {
        pair: ", ".join(keys) for pair, keys in edges.items()
    }


def test_mermaid_quotes_are_entity_codes() -> None:
    graph = build_graph([_skill('Say "hi"', ["input_query"], ['k"q']),
                         _skill("Bee", ['k"q'], ["done"])])
    mermaid = to_mermaid(graph, [['Say "hi"'], ["Bee"]])
    assert 's0["Say #quot;hi#quot;"]' in mermaid
    assert 's0 -->|"k#quot;q"| s1' in mermaid


@pytest.mark.parametrize("render", [to_dot, to_mermaid])
def test_plain_names_render_as_before(render: Any) -> None:
    graph = build_graph([_skill("Retrieve", ["input_query"], ["passages"]),
                         _skill("Answer", ["passages"], ["final_response"])])
    out = render(graph, [["Retrieve"], ["Answer"]])
    expected = ('"Retrieve" -> "Answer" [label="passages"];' if render is to_dot
                else 's0 -->|"passages"| s1')
    assert expected in out
