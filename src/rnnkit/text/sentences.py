"""Sentence splitting of running text by regular expressions (no models, no downloads).

Rules: blank lines are hard breaks (paragraphs); a single newline inside a paragraph is
ordinary whitespace (wrapped text). A sentence ends at . ! ? or an ellipsis, after any closing
quotes or brackets, when whitespace follows. A period does not end a sentence after a title or
a Latin abbreviation (Mr., Dr., e.g., i.e., cf., vs.), after an initial (J. Smith), or in a
decimal (3.14: no whitespace follows); after abbreviations such as etc., Inc., U.S. or a month
it ends one only when the next word is capitalised, and so does an ellipsis. A list marker
("1.") never stands as a sentence of its own. Whitespace inside a sentence is collapsed.
"""

from __future__ import annotations

import re

# Never end a sentence after these (lower-cased, without the period).
_NEVER_END = frozenset(
    [
        "mr", "mrs", "ms", "messrs", "dr", "prof", "rev", "hon", "gen", "sen", "rep", "gov",
        "lt", "sgt", "capt", "adm", "st", "mt", "e.g", "i.e", "cf", "vs", "viz", "approx",
        "fig", "figs", "eq", "vol", "pp", "nos", "ca"
    ]
)
# End a sentence after these only when the next word starts with a capital letter.
_MAYBE_END = frozenset(
    [
        "etc", "inc", "corp", "co", "ltd", "bros", "plc", "jr", "sr", "al", "no", "jan",
        "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"
    ]
)

_PARA_RE = re.compile(r"\n[ \t\r\f\v]*\n")
_WS_RE = re.compile(r"\s+")
_END_RE = re.compile(r"(?:[.!?]+|\u2026)[\"'\u201d\u2019)\]]*(?=\s)")
_INITIALS_RE = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_LIST_MARKER_RE = re.compile(r"\(?(?:\d{1,3}|[A-Za-z])[.)]")
_OPENERS = "\"'([{\u201c\u2018`*_"


def _ends_here(before: str, terminal: str, after: str) -> bool:
    """Does the candidate boundary end a sentence? `before` is the sentence so far (ending just
    before the terminal punctuation), `after` the text following the whitespace."""
    nxt = after[:1]
    if "!" in terminal or "?" in terminal:
        return True
    capital_next = nxt.isupper() or (nxt in _OPENERS and after[1:2].isupper())
    if terminal.startswith(("..", "…")):
        return capital_next
    words = before.rsplit(None, 1)
    if not words:
        return True
    prev = words[-1].lstrip(_OPENERS)
    low = prev.lower()
    if low in _NEVER_END:
        return False
    if len(prev) == 1 and prev.isalpha() and prev.isupper() and prev != "I":
        return False  # an initial: J. R. R. Tolkien
    if low == "no":
        return not nxt.isdigit()
    if low in _MAYBE_END or _INITIALS_RE.fullmatch(prev):
        return capital_next
    # "1. First item": a list marker is not a sentence of its own
    return not (len(words) == 1 and _LIST_MARKER_RE.fullmatch(before.strip() + terminal[:1]))


def _split_paragraph(para: str) -> list[str]:
    para = _WS_RE.sub(" ", para).strip()
    out: list[str] = []
    start = 0
    for m in _END_RE.finditer(para):
        terminal = m.group()
        if _ends_here(para[start:m.start()], terminal, para[m.end():].lstrip()):
            sent = para[start:m.end()].strip()
            if sent:
                out.append(sent)
            start = m.end()
    rest = para[start:].strip()
    if rest:
        out.append(rest)
    return out


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences (see the module docstring for the rules)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for para in _PARA_RE.split(text):
        if para.strip():
            out.extend(_split_paragraph(para))
    return out
