"""Token types read from tree-sitter syntax trees: the documented inventory and the leaf walk.

Every leaf of the syntax tree (plus a few nodes treated as atomic: strings, characters and
comments, whose inner pieces are not tokens of the language) gets one type from
:data:`TOKEN_TYPES`. The rules are ours (the CodeBERTER paper does not publish its inventory):

- anonymous leaves (the grammar's literal tokens): a word (``if``, ``class``, ``int``, ``def``,
  ``and``) is a ``keyword``; brackets, ``,`` ``;`` ``.`` ``:`` ``::`` ``...`` ``->`` are
  ``separator``; ``@`` inside an annotation/decorator is ``annotation``; everything else
  (``=``, ``+=``, ``<``, ``?``) is an ``operator``;
- literals: ``string``, ``number``, ``character``, ``boolean`` (true/false/True/False),
  ``null`` (null/None);
- ``comment``; ``annotation`` (the ``@`` and the name of a Java annotation or Python decorator);
- identifiers, by the syntactic position the tree gives: ``type`` (type names, class
  declarations), ``function`` (method/function declarations and call targets), ``field``
  (field declarations, ``obj.field`` accesses, Python attributes), ``parameter`` (formal and
  lambda parameters, keyword-argument names), ``variable`` (local declarations and assignment
  targets); an identifier whose role the tree does not give (a use of a name) is
  ``identifier``;
- ``other``: any leaf the rules above do not cover (counted, e.g. Python's ``...``).

The tables are per language (:class:`LanguageSpec`); adding a language is adding a spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = [
    "TOKEN_TYPES",
    "TYPE_TO_ID",
    "Leaf",
    "LanguageSpec",
    "ParseResult",
    "available_languages",
    "get_language",
    "get_parser",
    "language_for_path",
    "parse_leaves",
]

TOKEN_TYPES: tuple[str, ...] = (
    "keyword",
    "operator",
    "separator",
    "string",
    "number",
    "character",
    "boolean",
    "null",
    "comment",
    "annotation",
    "type",
    "function",
    "variable",
    "field",
    "parameter",
    "identifier",
    "other",
)
"""The token-type inventory shared by every language (label id = position)."""

TYPE_TO_ID: dict[str, int] = {name: i for i, name in enumerate(TOKEN_TYPES)}

SEPARATORS = frozenset({"(", ")", "[", "]", "{", "}", ",", ";", ".", ":", "::", "...", "->"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")

# (node type, its field name in the parent)
Ancestor = tuple[str, str | None]


@dataclass(frozen=True)
class Leaf:
    """One typed leaf: byte span in the UTF-8 source and its token type id."""

    start: int
    end: int
    type_id: int


@dataclass
class ParseResult:
    """Leaves of one file plus how much of it did not parse."""

    leaves: list[Leaf]
    error_nodes: int
    missing_nodes: int

    @property
    def has_errors(self) -> bool:
        """True when tree-sitter had to recover from a syntax error."""
        return bool(self.error_nodes or self.missing_nodes)


@dataclass(frozen=True)
class LanguageSpec:
    """How one language's tree maps to :data:`TOKEN_TYPES`.

    Attributes:
        name: language name (``java``, ``python``).
        extensions: file suffixes (with the dot) that belong to the language.
        load: returns the tree-sitter ``Language`` capsule (from the grammar wheel).
        named_leaves: named node type -> token type (literals, comments, ``this``).
        atomic: node types whose whole span is one token (strings, comments).
        identifier_nodes: named node types that are identifiers, typed by ``classify``.
        classify: ``(node type, ancestors innermost first) -> token type`` for identifiers.
        annotation_parents: node types under which ``@`` and names are ``annotation``.
    """

    name: str
    extensions: tuple[str, ...]
    load: Callable[[], Any]
    named_leaves: dict[str, str]
    atomic: frozenset[str]
    identifier_nodes: frozenset[str]
    classify: Callable[[str, list[Ancestor]], str]
    annotation_parents: frozenset[str] = field(default_factory=frozenset)


# ---------------------------------------------------------------------------- Java
_JAVA_TYPE_DECLS = {
    "class_declaration",
    "interface_declaration",
    "enum_declaration",
    "record_declaration",
    "annotation_type_declaration",
}
_JAVA_PARAMS = {
    "formal_parameter",
    "spread_parameter",
    "catch_formal_parameter",
    "receiver_parameter",
}


def _java_identifier(node_type: str, anc: list[Ancestor]) -> str:
    if node_type == "type_identifier":
        return "type"
    parent, my_field = anc[0] if anc else ("", None)
    if parent in ("marker_annotation", "annotation") and my_field == "name":
        return "annotation"
    if (
        parent == "scoped_identifier"
        and len(anc) > 1
        and anc[1][0]
        in (
            "marker_annotation",
            "annotation",
        )
    ):
        return "annotation"
    if parent in _JAVA_TYPE_DECLS and my_field == "name":
        return "type"
    calls = ("method_declaration", "constructor_declaration", "method_invocation")
    if parent in calls and my_field == "name":
        return "function"
    if parent in _JAVA_PARAMS and my_field == "name":
        return "parameter"
    if parent == "inferred_parameters" or (
        parent == "lambda_expression" and my_field == "parameters"
    ):
        return "parameter"
    if parent == "variable_declarator" and my_field == "name":
        outer = anc[1][0] if len(anc) > 1 else ""
        if outer == "spread_parameter":  # varargs: `String... args` declares a parameter
            return "parameter"
        return "field" if outer in ("field_declaration", "constant_declaration") else "variable"
    if parent in ("enhanced_for_statement", "resource") and my_field == "name":
        return "variable"
    if parent == "enum_constant" and my_field == "name":
        return "field"
    if parent == "field_access" and my_field == "field":
        return "field"
    return "identifier"


JAVA = LanguageSpec(
    name="java",
    extensions=(".java",),
    load=lambda: __import__("tree_sitter_java").language(),
    named_leaves={
        "decimal_integer_literal": "number",
        "hex_integer_literal": "number",
        "octal_integer_literal": "number",
        "binary_integer_literal": "number",
        "decimal_floating_point_literal": "number",
        "hex_floating_point_literal": "number",
        "string_literal": "string",
        "text_block": "string",
        "character_literal": "character",
        "true": "boolean",
        "false": "boolean",
        "null_literal": "null",
        "line_comment": "comment",
        "block_comment": "comment",
        "this": "keyword",
        "super": "keyword",
        "void_type": "keyword",
        "boolean_type": "keyword",
    },
    atomic=frozenset({"string_literal", "text_block", "character_literal", "block_comment"}),
    identifier_nodes=frozenset({"identifier", "type_identifier"}),
    classify=_java_identifier,
    annotation_parents=frozenset({"marker_annotation", "annotation"}),
)


# ---------------------------------------------------------------------------- Python
_PY_PARAM_PARENTS = {
    "parameters",
    "lambda_parameters",
    "list_splat_pattern",
    "dictionary_splat_pattern",
}
_PY_PARAM_WRAPPERS = {"default_parameter", "typed_parameter", "typed_default_parameter"}
_PY_TARGET_CONTAINERS = {"pattern_list", "tuple_pattern", "list_pattern"}


def _in_parameters(anc: list[Ancestor]) -> bool:
    """The identifier names a parameter: it sits in a parameter list, possibly inside a splat
    pattern or a typed/default wrapper, but never in a wrapper's default ``value`` (a use of
    a name, ``def f(x: int = y)``) or its ``type``."""
    for node_type, my_field in anc[:3]:
        if node_type in ("parameters", "lambda_parameters"):
            return True
        if node_type not in _PY_PARAM_PARENTS | _PY_PARAM_WRAPPERS:
            return False
        if node_type in _PY_PARAM_WRAPPERS and my_field in ("value", "type"):
            return False
    return False


def _python_identifier(node_type: str, anc: list[Ancestor]) -> str:
    parent, my_field = anc[0] if anc else ("", None)
    if any(t == "decorator" for t, _ in anc[:4]) and not any(
        t == "argument_list" for t, _ in anc[:4]
    ):
        return "annotation"
    if any(t == "type" for t, _ in anc[:4]):
        return "type"
    if parent == "function_definition" and my_field == "name":
        return "function"
    if parent == "class_definition" and my_field == "name":
        return "type"
    if parent == "call" and my_field == "function":
        return "function"
    if parent == "attribute" and my_field == "attribute":
        outer = anc[1] if len(anc) > 1 else ("", None)
        return "function" if outer == ("call", "function") else "field"
    if parent == "keyword_argument" and my_field == "name":
        return "parameter"
    if (parent in _PY_PARAM_WRAPPERS and my_field == "name") or _in_parameters(anc):
        return "parameter"
    targets = ("assignment", "augmented_assignment", "for_statement", "for_in_clause")
    if parent in targets and my_field == "left":
        return "variable"
    if parent in _PY_TARGET_CONTAINERS and len(anc) > 1:
        outer, outer_field = anc[1]
        if outer_field == "left" or outer in _PY_TARGET_CONTAINERS:
            return "variable"
    if parent == "named_expression" and my_field == "name":
        return "variable"
    if parent == "as_pattern_target":
        return "variable"
    return "identifier"


PYTHON = LanguageSpec(
    name="python",
    extensions=(".py", ".pyi"),
    load=lambda: __import__("tree_sitter_python").language(),
    named_leaves={
        "integer": "number",
        "float": "number",
        "string": "string",
        "true": "boolean",
        "false": "boolean",
        "none": "null",
        "comment": "comment",
    },
    atomic=frozenset({"string"}),
    identifier_nodes=frozenset({"identifier"}),
    classify=_python_identifier,
    annotation_parents=frozenset({"decorator"}),
)

_LANGUAGES: dict[str, LanguageSpec] = {"java": JAVA, "python": PYTHON}


def available_languages() -> list[str]:
    """Names of the supported languages."""
    return sorted(_LANGUAGES)


def get_language(name: str) -> LanguageSpec:
    """The :class:`LanguageSpec` called ``name``."""
    try:
        return _LANGUAGES[name]
    except KeyError:
        raise ValueError(
            f"unsupported language {name!r}; supported: {available_languages()}"
        ) from None


def language_for_path(path: str) -> LanguageSpec | None:
    """The language a file belongs to by its suffix (None when no language claims it)."""
    lower = path.lower()
    for spec in _LANGUAGES.values():
        if lower.endswith(spec.extensions):
            return spec
    return None


@cache
def get_parser(name: str) -> Any:
    """A cached tree-sitter parser for language ``name``."""
    import tree_sitter

    return tree_sitter.Parser(tree_sitter.Language(get_language(name).load()))


def _anonymous_type(text: str, anc: list[Ancestor], spec: LanguageSpec) -> str:
    if text == "@" and anc and anc[0][0] in spec.annotation_parents:
        return "annotation"
    if text in SEPARATORS:
        return "separator"
    if _WORD.match(text):
        return "keyword"
    return "operator"


def parse_leaves(source: bytes, language: str | LanguageSpec) -> ParseResult:
    """Parse UTF-8 ``source`` and return its typed leaves (in source order) and error counts.

    Zero-width leaves (tree-sitter's inserted MISSING tokens) are counted, not returned. Leaves
    inside ERROR nodes are typed by the same rules (the parser's best guess).
    """
    spec = get_language(language) if isinstance(language, str) else language
    tree = get_parser(spec.name).parse(source)
    leaves: list[Leaf] = []
    errors = missing = 0
    cursor = tree.walk()
    anc: list[Ancestor] = []  # ancestors of the cursor's node, innermost LAST while walking
    while True:
        node = cursor.node
        node_type = node.type
        if node.is_error:
            errors += 1
        descend = node.child_count > 0 and node_type not in spec.atomic
        if not descend:
            if node.is_missing:
                missing += 1
            elif node.end_byte > node.start_byte:
                outer = anc[-5:][::-1]  # parent, grandparent, ... (enough for the rules)
                ctx = [
                    (t, f) for (t, _), f in zip(outer, [cursor.field_name] + [f for _, f in outer])
                ]
                if not node.is_named:
                    kind = _anonymous_type(node.text.decode("utf-8", "replace"), ctx, spec)
                elif node_type in spec.named_leaves:
                    kind = spec.named_leaves[node_type]
                elif node_type in spec.identifier_nodes:
                    kind = spec.classify(node_type, ctx)
                else:
                    kind = "other"
                leaves.append(Leaf(node.start_byte, node.end_byte, TYPE_TO_ID[kind]))
        if descend:
            anc.append((node_type, cursor.field_name))
            cursor.goto_first_child()
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return ParseResult(leaves, errors, missing)
            anc.pop()
