#!/usr/bin/env python3
"""Check every locales/*/messages.ftl against the en-US source.

Reports, per locale:
  - Fluent syntax errors (Junk entries), with line numbers;
  - message ids missing from, or not in, en-US;
  - attributes missing from, or not in, the en-US message;
  - variables an attribute uses that en-US does not use in that attribute;
  - select expressions without a *[...] default variant;
  - variant keys that are not CLDR cardinal plural categories of the locale
    (numbers such as [0] are allowed; locales not in PLURALS are skipped);
  - reply keywords (C, R, STOP, START, HELP) that en-US has in an attribute
    but the locale does not, in Latin letters;
  - Unicode bidi control characters (the renderer isolates placeables itself).

Needs only the standard library and fluent.syntax (pip install fluent.syntax).
Usage: python3 locales/check_locales.py [LOCALES_DIR]
Exit status 0 when every locale is clean, 1 otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fluent.syntax import FluentParser, ast

SOURCE = "en-US"
KEYWORDS = ("C", "R", "STOP", "START", "HELP")
# CLDR cardinal plural categories (CLDR 42+), by primary language.
PLURALS = {
    "ar": {"zero", "one", "two", "few", "many", "other"},
    "en": {"one", "other"},
    "es": {"one", "many", "other"},
    "ht": {"other"},
    "ko": {"other"},
    "ru": {"one", "few", "many", "other"},
    "tl": {"one", "other"},
    "vi": {"other"},
    "zh": {"other"},
}
BIDI_CONTROLS = {
    "\u061c": "ARABIC LETTER MARK",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    **{chr(c): f"U+{c:04X}" for c in range(0x202A, 0x202F)},
    **{chr(c): f"U+{c:04X}" for c in range(0x2066, 0x206A)},
}


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class Walker:
    """Collects variables, select expressions lacking a default, and text."""

    def __init__(self) -> None:
        self.variables: set[str] = set()
        self.selects_without_default = 0
        self.variant_keys: set[str] = set()
        self.text: list[str] = []

    def pattern(self, p: ast.Pattern | None) -> None:
        if p is None:
            return
        for el in p.elements:
            if isinstance(el, ast.TextElement):
                self.text.append(el.value)
            elif isinstance(el, ast.Placeable):
                self.expression(el.expression)

    def expression(self, e) -> None:
        if isinstance(e, ast.SelectExpression):
            self.expression(e.selector)
            if not any(v.default for v in e.variants):
                self.selects_without_default += 1
            for v in e.variants:
                if isinstance(v.key, ast.Identifier):
                    self.variant_keys.add(v.key.name)
                self.pattern(v.value)
        elif isinstance(e, ast.VariableReference):
            self.variables.add(e.id.name)
        elif isinstance(e, ast.FunctionReference):
            for a in e.arguments.positional:
                self.expression(a)
            for n in e.arguments.named:
                self.expression(n.value)
        elif isinstance(e, ast.Placeable):
            self.expression(e.expression)
        elif isinstance(e, ast.StringLiteral):
            self.text.append(e.value)


def keywords_in(text: str) -> set[str]:
    # A keyword is a run of Latin capitals not touching other Latin letters,
    # so "回复C确认" and "C — подтвердить" count, "Call" and "CTIA" do not.
    return {
        kw
        for kw in KEYWORDS
        if re.search(rf"(?<![A-Za-z]){kw}(?![A-Za-z])", text)
    }


def load(path: Path) -> tuple[dict[str, dict[str, Walker]], list[str]]:
    """Returns {message id: {attribute: Walker}} and syntax problems."""
    text = path.read_text(encoding="utf-8")
    problems = []
    for ch, name in BIDI_CONTROLS.items():
        at = text.find(ch)
        if at >= 0:
            problems.append(f"line {line_of(text, at)}: bidi control {name}")
    resource = FluentParser(with_spans=True).parse(text)
    messages: dict[str, dict[str, Walker]] = {}
    for entry in resource.body:
        if isinstance(entry, ast.Junk):
            detail = "; ".join(
                f"{a.code} {a.message}" for a in entry.annotations
            )
            problems.append(
                f"line {line_of(text, entry.span.start)}: syntax error: {detail}"
            )
        elif isinstance(entry, ast.Message):
            attrs: dict[str, Walker] = {}
            if entry.value is not None:
                w = Walker()
                w.pattern(entry.value)
                attrs["(value)"] = w
            for a in entry.attributes:
                w = Walker()
                w.pattern(a.value)
                attrs[a.id.name] = w
            if entry.id.name in messages:
                problems.append(f"message {entry.id.name} defined twice")
            messages[entry.id.name] = attrs
        elif isinstance(entry, ast.Term):
            problems.append(f"term -{entry.id.name}: terms are not used in Herald locales")
    return messages, problems


def compare(
    lang: str,
    messages: dict[str, dict[str, Walker]],
    source: dict[str, dict[str, Walker]],
) -> list[str]:
    problems = []
    for mid in sorted(source.keys() - messages.keys()):
        problems.append(f"missing message {mid}")
    for mid in sorted(messages.keys() - source.keys()):
        problems.append(f"message {mid} is not in {SOURCE}")
    for mid in sorted(messages.keys() & source.keys()):
        mine, theirs = messages[mid], source[mid]
        for attr in sorted(theirs.keys() - mine.keys()):
            problems.append(f"{mid}: missing .{attr}")
        for attr in sorted(mine.keys() - theirs.keys()):
            problems.append(f"{mid}: .{attr} is not in {SOURCE}")
        for attr in sorted(mine.keys() & theirs.keys()):
            extra = mine[attr].variables - theirs[attr].variables
            if extra:
                names = " ".join(f"${v}" for v in sorted(extra))
                problems.append(
                    f"{mid}.{attr}: uses {names}, which {SOURCE} does not use there"
                )
            missing_kw = keywords_in("".join(theirs[attr].text)) - keywords_in(
                "".join(mine[attr].text)
            )
            if missing_kw:
                problems.append(
                    f"{mid}.{attr}: reply keyword(s) {', '.join(sorted(missing_kw))} "
                    "missing or not in Latin letters"
                )
    return problems


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    files = sorted(root.glob("*/messages.ftl"))
    if not any(f.parent.name == SOURCE for f in files):
        print(f"{root}: no {SOURCE}/messages.ftl", file=sys.stderr)
        return 1
    loaded = {f.parent.name: load(f) for f in files}
    source = loaded[SOURCE][0]
    failed = False
    for lang, (messages, problems) in loaded.items():
        categories = PLURALS.get(lang.split("-")[0].lower())
        for mid, attrs in messages.items():
            for attr, w in attrs.items():
                if w.selects_without_default:
                    problems.append(f"{mid}.{attr}: select without a *[...] default")
                if categories is not None and w.variant_keys - categories:
                    bad = ", ".join(sorted(w.variant_keys - categories))
                    problems.append(
                        f"{mid}.{attr}: variant(s) [{bad}] are not plural categories "
                        f"of {lang} ({', '.join(sorted(categories))})"
                    )
        if lang != SOURCE:
            problems += compare(lang, messages, source)
        if problems:
            failed = True
            for p in problems:
                print(f"locales/{lang}/messages.ftl: {p}")
        else:
            n_attrs = sum(len(a) for a in messages.values())
            print(f"locales/{lang}: ok ({len(messages)} messages, {n_attrs} attributes)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
