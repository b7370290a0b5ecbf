"""Token types from tree-sitter trees and their alignment to subword tokens."""

from __future__ import annotations

import pytest
from adapterlab.code.data.align import IGNORE_INDEX, char_type_map, label_offsets
from adapterlab.code.data.token_types import TOKEN_TYPES, parse_leaves
from adapterlab.code.data.ttc import encode_text

JAVA_SNIPPET = """@Override
public int count(String zählerWört, int[] xs) {
\tint total = 0; // sum
\tfor (int i = 0; i < xs.length; i++) { total += xs[i]; }
\tthis.cache = null;
\treturn zählerWört.isEmpty() ? -1 : total;
}
"""

PYTHON_SNIPPET = (
    "@cache\r\n"
    "def héllo_wörld(self, zählerWört: str, count=3) -> bool:\r\n"
    '\t"""Say hi."""\r\n'
    "\tvalue = self.greeting.format(zählerWört)  # ça va\r\n"
    "\treturn value is not None and count > 2.5\r\n"
)


def typed(source: str, language: str) -> list[tuple[str, str]]:
    raw = source.encode("utf-8")
    return [
        (raw[leaf.start : leaf.end].decode("utf-8"), TOKEN_TYPES[leaf.type_id])
        for leaf in parse_leaves(raw, language).leaves
    ]


def test_java_types():
    src = "class A { @Override public int f(int x) { this.y = x.get('c') + 1.5; return null; } }"
    assert typed(src, "java") == [
        ("class", "keyword"), ("A", "type"), ("{", "separator"),
        ("@", "annotation"), ("Override", "annotation"), ("public", "keyword"),
        ("int", "keyword"), ("f", "function"), ("(", "separator"), ("int", "keyword"),
        ("x", "parameter"), (")", "separator"), ("{", "separator"), ("this", "keyword"),
        (".", "separator"), ("y", "field"), ("=", "operator"), ("x", "identifier"),
        (".", "separator"), ("get", "function"), ("(", "separator"), ("'c'", "character"),
        (")", "separator"), ("+", "operator"), ("1.5", "number"), (";", "separator"),
        ("return", "keyword"), ("null", "null"), (";", "separator"), ("}", "separator"),
        ("}", "separator"),
    ]  # fmt: skip
    decl = typed('class B { private String s = "t"; void g() { boolean b = true; } }', "java")
    assert ("s", "field") in decl and ("b", "variable") in decl and ('"t"', "string") in decl
    assert ("String", "type") in decl and ("true", "boolean") in decl


def test_python_types():
    src = "@wrap\ndef f(a, b=1, *c, **d):\n    x = a.y(b, k=None)  # hi\n    return 'q' + x.z\n"
    assert typed(src, "python") == [
        ("@", "annotation"), ("wrap", "annotation"), ("def", "keyword"), ("f", "function"),
        ("(", "separator"), ("a", "parameter"), (",", "separator"), ("b", "parameter"),
        ("=", "operator"), ("1", "number"), (",", "separator"), ("*", "operator"),
        ("c", "parameter"), (",", "separator"), ("**", "operator"), ("d", "parameter"),
        (")", "separator"), (":", "separator"), ("x", "variable"), ("=", "operator"),
        ("a", "identifier"), (".", "separator"), ("y", "function"), ("(", "separator"),
        ("b", "identifier"), (",", "separator"), ("k", "parameter"), ("=", "operator"),
        ("None", "null"), (")", "separator"), ("# hi", "comment"), ("return", "keyword"),
        ("'q'", "string"), ("+", "operator"), ("x", "identifier"), (".", "separator"),
        ("z", "field"),
    ]  # fmt: skip
    types = dict(typed("class C(B):\n    def m(self) -> int:\n        return True\n", "python"))
    assert types["C"] == "type" and types["int"] == "type" and types["True"] == "boolean"


def test_parse_errors_are_counted():
    assert not parse_leaves(b"x = (1, 2)\n", "python").has_errors
    broken = parse_leaves(b"def f(:\n  return )\n", "python")
    assert broken.has_errors and broken.error_nodes + broken.missing_nodes >= 1
    java = parse_leaves(b"class A { void f() { int x = ; }", "java")
    assert java.has_errors


def _leaf_char_spans(text: str, language: str) -> list[tuple[int, int, int]]:
    """Independent reference: character spans of leaves found by decoding byte prefixes."""
    raw = text.encode("utf-8")
    spans = []
    for leaf in parse_leaves(raw, language).leaves:
        start = len(raw[: leaf.start].decode("utf-8"))
        end = len(raw[: leaf.end].decode("utf-8").rstrip(" \t\r\n"))
        spans.append((start, end, leaf.type_id))
    return spans


@pytest.mark.parametrize("language,text", [("java", JAVA_SNIPPET), ("python", PYTHON_SNIPPET)])
@pytest.mark.parametrize("which", ["bpe_tokenizer", "wordpiece_tokenizer"])
def test_alignment_exact(language, text, which, request):
    tokenizer = request.getfixturevalue(which)
    enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    out = encode_text(text, language, tokenizer, max_length=512)
    assert len(out["input_ids"]) == 1 and out["input_ids"][0] == enc["input_ids"]
    labels = out["labels"][0]
    spans = _leaf_char_spans(text, language)
    covered = {i: 0 for i in range(len(spans))}
    for (s, e), special, label in zip(enc["offset_mapping"], enc["special_tokens_mask"], labels):
        if special:
            assert label == IGNORE_INDEX  # <s>, </s>, [CLS], [SEP]
            continue
        inside = [i for i, (a, b, _) in enumerate(spans) if a <= s and e <= b and e > s]
        if not inside:
            # a merged subword (BPE "()"): the type covering most characters, earliest on a tie
            overlap: dict[int, list[int]] = {}
            for j, (a, b, kind) in enumerate(spans):
                n = min(b, e) - max(a, s)
                if n > 0:
                    covered[j] += 1
                    overlap.setdefault(kind, [0, a])[0] += n
            if not overlap:
                assert label == IGNORE_INDEX and text[s:e].strip() == ""  # newline/tab/indent
            else:
                best = max(overlap, key=lambda k: (overlap[k][0], -overlap[k][1]))
                assert label == best, (text[s:e], TOKEN_TYPES[label])
            continue
        assert label == spans[inside[0]][2], (text[s:e], TOKEN_TYPES[label])
        covered[inside[0]] += 1
    assert all(covered.values()), [
        text[spans[i][0] : spans[i][1]] for i, c in covered.items() if not c
    ]
    # multi-subword, non-ASCII identifiers: every piece carries the identifier's type
    target = "héllo_wörld" if language == "python" else "zählerWört"
    start = text.index(target)
    pieces = [
        label
        for (s, e), label in zip(enc["offset_mapping"], labels)
        if e > s and start <= s and e <= start + len(target)
    ]
    assert len(pieces) >= 2
    want = "function" if language == "python" else "parameter"
    assert {TOKEN_TYPES[p] for p in pieces} == {want}


def test_crlf_and_merged_tokens():
    text = "a = 1\r\nb();\r\n"
    leaves = parse_leaves(text.encode(), "python").leaves
    types = char_type_map(text, leaves)
    assert types[text.index("\r")] == -1 and types[text.index("\n")] == -1
    # a subword spanning "();" (separators only) -> separator; "b(" -> majority tie -> first
    labels = label_offsets(types, [(7, 8), (8, 11), (7, 9), (5, 7), (0, 0)], [0, 0, 0, 0, 1])
    sep, ident = TOKEN_TYPES.index("separator"), TOKEN_TYPES.index("function")
    assert labels == [ident, sep, ident, IGNORE_INDEX, IGNORE_INDEX]


def test_long_file_gives_several_windows(bpe_tokenizer):
    text = "".join(f"v{i} = {i}\n" for i in range(300))
    out = encode_text(text, "python", bpe_tokenizer, max_length=64)
    assert len(out["input_ids"]) > 5 and all(len(w) <= 64 for w in out["input_ids"])
    assert all(lab[0] == IGNORE_INDEX and lab[-1] == IGNORE_INDEX for lab in out["labels"])


def _declared_parameters(node, language: str) -> set[tuple[int, int]]:
    """Byte spans of the parameter *names* a tree declares, read from the tree-sitter tree
    directly (independently of the classifier): Python parameter lists (plain, default,
    typed, typed-default, splat) and Java formal and varargs (spread) parameters."""
    spans: set[tuple[int, int]] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        stack.extend(n.children)
        if language == "python" and n.type in ("parameters", "lambda_parameters"):
            for p in n.named_children:
                name = p.child_by_field_name("name") or p
                while name.type != "identifier" and name.named_children:
                    name = name.named_children[0]  # typed/splat wrappers: the name comes first
                if name.type == "identifier":
                    spans.add((name.start_byte, name.end_byte))
        if language == "java" and n.type == "formal_parameter":
            name = n.child_by_field_name("name")
            spans.add((name.start_byte, name.end_byte))
        if language == "java" and n.type == "spread_parameter":
            declarator = next(c for c in n.named_children if c.type == "variable_declarator")
            name = declarator.child_by_field_name("name")
            spans.add((name.start_byte, name.end_byte))
    return spans


@pytest.mark.parametrize(
    "language,source",
    [
        (
            "python",
            "def f(x: int = 0, y=z, *a: int, **k: str, w: List[int] = q, v=g(u)):\n  pass\n",
        ),
        ("python", "f = lambda a, b=c, *d: a + c\n"),
        ("java", "class A { void m(int n, final String... args) { g(args, n); } }"),
        ("java", "class B { B(Object... xs) { } static <T> void p(T t, T[]... rest) { } }"),
    ],
)
def test_parameter_rules_against_the_tree(language, source):
    """Every declared parameter name (read from the tree) is typed ``parameter``, and nothing
    else is: default values (``= z``, ``= q``) are uses of names, and a Java varargs name
    (``String... args``) is a parameter, not a local variable."""
    from adapterlab.code.data.token_types import get_parser

    raw = source.encode()
    declared = _declared_parameters(get_parser(language).parse(raw).root_node, language)
    leaves = parse_leaves(raw, language).leaves
    typed_params = {(f.start, f.end) for f in leaves if TOKEN_TYPES[f.type_id] == "parameter"}
    assert declared and typed_params == declared, sorted(
        raw[a:b].decode() for a, b in typed_params ^ declared
    )


def test_typed_default_and_varargs_types():
    assert typed("def f(x: int = y):\n  pass\n", "python")[3:8] == [
        ("x", "parameter"), (":", "separator"), ("int", "type"), ("=", "operator"),
        ("y", "identifier"),
    ]  # fmt: skip
    assert typed("class A { void m(String... args) {} }", "java")[5:9] == [
        ("(", "separator"), ("String", "type"), ("...", "separator"), ("args", "parameter"),
    ]  # fmt: skip
