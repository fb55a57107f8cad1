"""N-best rescoring: parse n-best lists, add a weighted LM score, pick the best per utterance.

Formats (one hypothesis per line):
    plain   id<TAB>hypothesis                      (no acoustic score: ascore = 0)
    srilm   ascore lscore nwords w1 w2 ...         (SRILM's NBestList; the whole file is one utterance,
                                                    its id the file name; the old lscore is replaced)
    kaldi   uttid-N w1 w2 ...                      (id = uttid, N = the hypothesis number)

total = ascore + lm_weight * lm_logprob + word_penalty * nwords, with lm_logprob in the chosen
log base (default 10, as SRILM and Kaldi scores are). Hypotheses keep their input order
within an id in ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

FORMATS = ("plain", "srilm", "kaldi")


@dataclass
class Hyp:
    id: str  # utterance id
    text: str  # the hypothesis words
    ascore: float = 0.0  # acoustic / translation model score from the input (0 when absent)
    line: int = 0  # 1-based input line, for messages and stable order
    lm: float = 0.0  # LM log-probability in the output base (filled by rescore)
    total: float = 0.0  # combined score (filled by rescore)

    @property
    def nwords(self) -> int:
        return len(self.text.split())


def parse_nbest(lines: list[str], fmt: str, source: str) -> list[Hyp]:
    """Parse n-best lines; a line that does not parse is an InputError naming FILE:LINE."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    hyps: list[Hyp] = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        where = f"{source}:{n}"
        if fmt == "plain":
            if "\t" not in line:
                raise InputError(f"{where}: expected 'id<TAB>hypothesis', found no tab: {line[:60]!r}")
            uid, text = line.split("\t", 1)
            hyps.append(Hyp(uid.strip(), text.strip(), 0.0, n))
        elif fmt == "srilm":
            parts = line.split()
            try:
                ascore, _lscore, nwords = float(parts[0]), float(parts[1]), int(parts[2])
            except (ValueError, IndexError):
                raise InputError(f"{where}: expected 'ascore lscore nwords words...' (SRILM n-best), got {line[:60]!r}") from None
            words = parts[3:]
            if nwords != len(words):
                raise InputError(f"{where}: nwords says {nwords} but the line has {len(words)} words")
            hyps.append(Hyp(Path(source).name, " ".join(words), ascore, n))
        else:
            uid, _, text = line.partition(" ")
            base, dash, num = uid.rpartition("-")
            if not dash or not base or not num.isdigit():
                raise InputError(f"{where}: expected 'uttid-N words...' (Kaldi n-best), got {line[:60]!r}")
            hyps.append(Hyp(base, text.strip(), 0.0, n))
    if not hyps:
        raise InputError(f"{source}: no hypotheses (empty n-best list)")
    return hyps


def combine(hyps: list[Hyp], lm_logprobs: list[float], lm_weight: float, word_penalty: float) -> dict[str, list[Hyp]]:
    """Fill lm and total; return hypotheses grouped by id (first-seen order), best first."""
    groups: dict[str, list[Hyp]] = {}
    for h, lp in zip(hyps, lm_logprobs, strict=True):
        h.lm = lp
        h.total = h.ascore + lm_weight * lp + word_penalty * h.nwords
        groups.setdefault(h.id, []).append(h)
    for g in groups.values():
        g.sort(key=lambda h: (-h.total, h.line))
    return groups


def format_rescored(groups: dict[str, list[Hyp]]) -> list[str]:
    """TSV: id, rank, total, ascore, lm, nwords, hypothesis."""
    out = []
    for uid, g in groups.items():
        for rank, h in enumerate(g, 1):
            out.append(f"{uid}\t{rank}\t{h.total:.6f}\t{h.ascore:.6f}\t{h.lm:.6f}\t{h.nwords}\t{h.text}")
    return out


def format_best(groups: dict[str, list[Hyp]], fmt: str) -> list[str]:
    """The best hypothesis per id: `id<TAB>text` (plain, srilm) or `uttid text` (kaldi)."""
    sep = " " if fmt == "kaldi" else "\t"
    return [f"{uid}{sep}{g[0].text}" for uid, g in groups.items()]
