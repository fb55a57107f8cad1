"""LanguageModel: the Python API. Load a model directory once, then score, evaluate, generate.

    >>> import rnnkit
    >>> lm = rnnkit.load("model/")
    >>> lm.score("the cat sat on the mat .", log_base=10)
    >>> list(lm.full_scores("the cat sat"))      # (logprob, token, is_oov) per token
    >>> from rnnkit.data.lines import iter_lines
    >>> for s in lm.score_iter(iter_lines("big.txt")): ...   # streamed, in bounded memory
    >>> lm.perplexity(["first sentence .", "second one ."])
    >>> lm.generate(prompt="the", temperature=0.8, seed=1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from . import checkpoint
from .config import SampleConfig
from .data import encode_sentences
from .engines import build_model
from .errors import ConfigError
from .inference import tune as _tune
from .inference import words as _words
from .inference.context import ContextScorer, conversation_rule
from .inference.evaluate import EvalResult, evaluate_encoded
from .inference.generate import generate as _generate
from .inference.predict import check_top_k, next_logprobs
from .inference.predict import top_k as _top_k
from .inference.rescore import Hyp, Mix, combine, hyp_logprob, rescore_carried, rescore_stream
from .inference.score import (
    CHUNK_SENTENCES,
    SentenceScore,
    Summary,
    log_base_value,
    score_sentences,
    score_stream,
)
from .inference.state import Stepper
from .inference.words import RegionScore, WordScore
from .text import EOS, make_tokenizer


class LanguageModel:
    """A trained model with its tokenizer and vocabulary, on the numpy or torch engine."""

    def __init__(self, ck: checkpoint.Checkpoint, engine: str = "numpy", device: str = "auto", path: Path | None = None):
        self.path = path
        self.config = ck.model
        self.tokenizer_config = ck.tokenizer
        self.vocab = ck.vocab
        self.info = ck.extra
        self.engine = engine
        self.tokenizer = make_tokenizer(ck.tokenizer)
        self.model = build_model(engine, ck.model, ck.params, device=device)

    @classmethod
    def load(cls, path: str | Path, engine: str = "numpy", device: str = "auto") -> LanguageModel:
        return cls(checkpoint.load(path), engine=engine, device=device, path=Path(path))

    def __repr__(self) -> str:
        c = self.config
        return (f"LanguageModel({str(self.path)!r}, {c.cell} {c.num_layers}x{c.hidden_dim}, "
                f"{self.tokenizer_config.level} vocab {len(self.vocab)}, engine={self.engine!r})")

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer.tokenize(text)

    # ------------------------------------------------------------ scoring

    def score_sentences(self, sentences: Iterable[str], *, bos: bool = True, eos: bool = True, oov: str = "unk",
                        batch_size: int = 64, per_token: bool = True, detail: bool = False,
                        progress: Callable[[int], None] | None = None) -> list[SentenceScore]:
        """Scores (natural log) for each sentence, in input order, with a TokenScore per token
        (its character offsets in the line) unless `per_token=False`; `detail=True` adds each
        token's entropy and rank (the full distributions: slower). `progress(n)` is called as n
        more sentences are done. The whole list is batched at once: for a long input use
        `score_iter`."""
        return score_sentences(self.model, self.vocab, self.tokenizer, sentences, bos=bos, eos=eos, oov=oov,
                               batch_size=batch_size, per_token=per_token, detail=detail, progress=progress)

    def score_iter(self, lines: Iterable[str], *, bos: bool = True, eos: bool = True, oov: str = "unk",
                   batch_size: int = 64, per_token: bool = False, detail: bool = False,
                   chunk_sentences: int = CHUNK_SENTENCES,
                   progress: Callable[[int], None] | None = None) -> Iterator[SentenceScore]:
        """Score sentences as they come (any iterable: a file's lines, a generator), yielding
        results in input order a chunk of `chunk_sentences` at a time, in memory that does not
        grow with the input. Results hold totals only unless `per_token=True`; add them up with
        `Summary.add` (`detail=True`: per-token entropy and rank too). With the torch engine on
        CPU, torch runs one thread per batch until the iterator is exhausted or closed."""
        return score_stream(self.model, self.vocab, self.tokenizer, lines, bos=bos, eos=eos, oov=oov,
                            batch_size=batch_size, per_token=per_token, detail=detail,
                            chunk_sentences=chunk_sentences, progress=progress)

    def score(self, text: str, bos: bool = True, eos: bool = True, log_base: float | str = math.e) -> float:
        """Total log-probability of one sentence (KenLM's `score`), in the given base."""
        res = self.score_sentences([text], bos=bos, eos=eos, per_token=False)[0]
        return res.logprob / math.log(log_base_value(log_base))

    def full_scores(self, text: str, bos: bool = True, eos: bool = True, log_base: float | str = math.e
                    ) -> Iterator[tuple[float, str, bool]]:
        """(logprob, token, is_oov) for each predicted token, `</s>` last when eos."""
        ln_b = math.log(log_base_value(log_base))
        for t in self.score_sentences([text], bos=bos, eos=eos)[0].tokens:
            yield t.logprob / ln_b, t.token, t.is_oov

    def perplexity(self, sentences: str | Iterable[str], oov: str = "unk") -> float:
        """Corpus perplexity over sentences (a string is one sentence): exp(total nats / predicted tokens),
        `</s>` included, as SRILM's ppl. Streams: any iterable, in bounded memory."""
        if isinstance(sentences, str):
            sentences = [sentences]
        return Summary.of(self.score_iter(sentences, oov=oov)).ppl

    def rescore(self, hypotheses: Iterable, lm_weight: float = 1.0, word_penalty: float = 0.0,
                log_base: float | str = 10, batch_size: int = 64,
                progress: Callable[[int], None] | None = None, *, mix: Mix | None = None,
                carry_context: bool = False, conversation: Callable[[str], str] | None = None
                ) -> dict[str, list[Hyp]]:
        """Rescore n-best hypotheses: `Hyp` objects or (id, text) / (id, text, ascore) tuples.
        total = ascore + lm_weight * LM log-probability (in log_base) + word_penalty * words.
        Returns {id: hypotheses best first}, an id's hypotheses gathered wherever they are
        (with carry_context they must be consecutive: `rescore_iter`). `mix`: the LM
        log-probability interpolates the RNN with an n-gram model (inference/rescore.py)."""
        if carry_context:
            return dict(self.rescore_iter(hypotheses, lm_weight, word_penalty, log_base, batch_size,
                                          progress=progress, mix=mix, carry_context=True, conversation=conversation))
        hyps = [_hyp(h, i) for i, h in enumerate(hypotheses, 1)]
        ln_b = math.log(log_base_value(log_base))
        scores = self.score_sentences([h.text for h in hyps], batch_size=batch_size, per_token=mix is not None,
                                      progress=progress)
        return combine(hyps, [hyp_logprob(s, ln_b, mix) for s in scores], lm_weight, word_penalty)

    def rescore_iter(self, hypotheses: Iterable, lm_weight: float = 1.0, word_penalty: float = 0.0,
                     log_base: float | str = 10, batch_size: int = 64, chunk_sentences: int = CHUNK_SENTENCES,
                     progress: Callable[[int], None] | None = None, source: str = "<hypotheses>", *,
                     mix: Mix | None = None, carry_context: bool = False,
                     conversation: Callable[[str], str] | None = None) -> Iterator[tuple[str, list[Hyp]]]:
        """`rescore` as a stream: (id, hypotheses best first) as each id's group is complete, in
        memory that does not grow with the input. An id's hypotheses must be consecutive (as
        n-best files have them); an id that comes back after another is an InputError naming
        `source` and the hypothesis' line (its number for tuples). `carry_context`: each id's
        hypotheses start from the state the previous id's best left, reset where
        `conversation(id)` changes (default: inference.context.conversation_rule())."""
        ln_b = math.log(log_base_value(log_base))
        hyps = (_hyp(h, i) for i, h in enumerate(hypotheses, 1))
        if carry_context:
            return self._rescore_carried(hyps, lm_weight, word_penalty, ln_b, batch_size, progress, source, mix,
                                         conversation or conversation_rule())

        def lm_logprobs(texts: Iterable[str]) -> Iterator[float]:
            scores = self.score_iter(texts, batch_size=batch_size, chunk_sentences=chunk_sentences,
                                     per_token=mix is not None, progress=progress)
            return (hyp_logprob(s, ln_b, mix) for s in scores)

        return rescore_stream(hyps, lm_logprobs, lm_weight, word_penalty, source)

    def _rescore_carried(self, hyps: Iterable[Hyp], lm_weight: float, word_penalty: float, ln_b: float,
                         batch_size: int, progress: Callable[[int], None] | None, source: str, mix: Mix | None,
                         conversation: Callable[[str], str]) -> Iterator[tuple[str, list[Hyp]]]:
        scorer = ContextScorer(self.model, self.vocab, self.tokenizer, batch_size=batch_size,
                               per_token=mix is not None)

        def score_group(texts: list[str], state) -> list[float]:
            scores = scorer.score(texts, state)
            if progress is not None:
                progress(len(texts))
            return [hyp_logprob(s, ln_b, mix) for s in scores]

        return rescore_carried(hyps, score_group, scorer.carry, conversation, lm_weight, word_penalty, source)

    def tune_weights(self, hypotheses: Iterable, references: dict[str, str], *,
                     start: _tune.Weights | None = None, mix_lm=None, log_base: float | str = 10,
                     batch_size: int = 64, progress: Callable[[int], None] | None = None,
                     source: str = "<hypotheses>") -> _tune.TuneResult:
        """The LM weight and word penalty (and lambda with `mix_lm`, an ARPA model) of fewest
        corpus errors on a dev n-best set against `references` {id: words}, searched from
        `start` (default: Weights(): 1, 0, lambda 0.5; inference/tune.py: the grid, the ties). Each hypothesis is scored once; the
        dev set's features are held in memory. `.groups()` of the result: the hypotheses
        rescored at the chosen weights, as `rescore_iter` ranks them."""
        hyps = [_hyp(h, i) for i, h in enumerate(hypotheses, 1)]
        ln_b = math.log(log_base_value(log_base))
        start = start or _tune.Weights()
        mix = None if mix_lm is None else Mix(mix_lm, 0.5 if start.lam is None else start.lam)
        if mix is not None and start.lam is None:
            start = _tune.Weights(start.lm_weight, start.word_penalty, mix.lam)
        scores = self.score_iter((h.text for h in hyps), batch_size=batch_size, per_token=mix is not None,
                                 progress=progress)
        return _tune.tune(_tune.collect(hyps, scores, references, ln_b, mix, source), start)

    def evaluate(self, sentences: Iterable[str], mode: str | None = None, batch_size: int = 10) -> EvalResult:
        """Summed nats and predicted-token count over sentences (EvalResult: .loss, .ppl, .bpc).

        mode "stream" carries the hidden state across sentences (how PTB results are reported),
        "sentences" resets it per sentence; default: the way the model was trained."""
        mode = mode or self.info.get("train", {}).get("batching", "sentences")
        if mode not in ("stream", "sentences"):
            raise ConfigError(f"--mode must be stream or sentences, got {mode!r}")
        enc = encode_sentences(list(sentences), self.tokenizer, self.vocab)
        return evaluate_encoded(self.model, enc, self.vocab, mode, batch_size)

    # ------------------------------------------------------------ words and regions

    def word_scores(self, text: str, *, oov: str = "unk") -> list[WordScore]:
        """A character model's per-word scores of one line (inference/words.py): each word's
        characters and the boundary that ends it, so that the words' logprobs add up to the
        sentence's (with <s> and </s>)."""
        if self.tokenizer_config.level != "char":
            raise ConfigError("word scores are for character models: a word model's words are its tokens "
                              "(score_sentences(per_token=True), rnnkit score --per-token)")
        return _words.char_word_scores(self.score_sentences([text], oov=oov)[0], text)

    def region_scores(self, text: str, regions: Iterable[tuple[int, int, str]], *, bos: bool = True,
                      eos: bool = True, oov: str = "unk", where: str = "region") -> list[RegionScore]:
        """A RegionScore per (start, end, label) character span of one line: the summed logprob
        of the tokens wholly inside it and the tokens it cuts through (inference/words.py)."""
        s = self.score_sentences([text], bos=bos, eos=eos, oov=oov)[0]
        toks = self.tokenizer.tokenize(text)
        spans = _words.token_spans(text, toks, self.tokenizer_config.level == "char", self.tokenizer_config.lowercase)
        if toks and toks[-1] == EOS:  # the line's own </s>, not a word
            spans = spans[:-1]
        return _words.region_scores(_words.located_tokens(s, spans if bos else spans[1:]), regions, text, where)

    # ------------------------------------------------------------ next-token predictions

    def next_token_logprobs(self, prefixes: str | Iterable[str], *, bos: bool = True,
                            batch_size: int = 64) -> np.ndarray:
        """ln p(next token | prefix) over the whole vocabulary (column i is `vocab` id i): float64
        (N, K), a row per prefix in input order (a string is one prefix: (1, K)). A prefix starts
        with <s> unless `bos=False`; each of its tokens costs one recurrent step, batched."""
        texts = [prefixes] if isinstance(prefixes, str) else list(prefixes)
        return next_logprobs(self.model, [self._prefix_ids(t, bos) for t in texts], batch_size=batch_size)

    def predict(self, prefixes: str | Iterable[str], top_k: int = 10, *, bos: bool = True, batch_size: int = 64
                ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """The `top_k` most likely next tokens after a prefix as (token, probability) pairs, most
        likely first (ties: the smaller id); for an iterable of prefixes, a list of such lists.
        `top_k=0`: the whole vocabulary, `<unk>`, `<s>` and `</s>` included."""
        check_top_k(top_k)
        ids, logps = _top_k(self.next_token_logprobs(prefixes, bos=bos, batch_size=batch_size), top_k)
        pairs = [list(zip(self.vocab.decode(i.tolist()), np.exp(lp).tolist())) for i, lp in zip(ids, logps)]
        return pairs[0] if isinstance(prefixes, str) else pairs

    def text_ids(self, text: str) -> list[int]:
        """The ids the model reads for `text` after <s>: its tokens (unknown ones as <unk>); a
        character model's lines are <s> chars </s>, so a newline in it is </s> <s>."""
        lines = text.split("\n") if self.tokenizer_config.level == "char" else [text]
        ids: list[int] = []
        for n, line in enumerate(lines):
            if n:
                ids += [self.vocab.eos_id, self.vocab.bos_id]
            ids += self.vocab.encode(self.tokenizer.tokenize(line))
        return ids

    def prompt_ids(self, prompt: str) -> list[int]:
        """`text_ids` of a generation prompt; one whose every token is unknown is a ConfigError."""
        ids = self.text_ids(prompt)
        words = [i for i in ids if i not in (self.vocab.eos_id, self.vocab.bos_id)]
        if words and all(i == self.vocab.unk_id for i in words):
            raise ConfigError(f"prompt {prompt!r}: every token is unknown to this model's vocabulary")
        return ids

    def _prefix_ids(self, text: str, bos: bool) -> list[int]:
        """A prefix's ids: <s> unless not `bos`, then `text_ids` (as `generate` reads a prompt)."""
        ids = ([self.vocab.bos_id] if bos else []) + self.text_ids(text)
        if not ids:
            raise ConfigError(f"predict: prompt {text!r} has no tokens and --no-bos (bos=False) leaves nothing "
                              "to condition on")
        return ids

    # ------------------------------------------------------------ step API for decoders

    def stepper(self) -> Stepper:
        """KenLM-style states for decoders: `begin`, `advance` / `score` a batch of states by one
        token each (one recurrent step), `end` (inference/state.py)."""
        return Stepper(self.model, self.vocab)

    # ------------------------------------------------------------ generation

    def generate(self, prompt: str = "", **options) -> str | list[str]:
        """Sample (or greedy / beam) continuations of `prompt`; options are SampleConfig fields
        (temperature, top_k, top_p, greedy, beam, max_len, min_len, num_samples, seed, stop).
        Returns a string, or a list of strings when num_samples > 1."""
        try:
            cfg = SampleConfig(**options)
        except TypeError as e:
            raise ConfigError(f"generate: {e}") from None
        cfg.validate()
        char = self.tokenizer_config.level == "char"
        ids = self.prompt_ids(prompt)

        def detok(new_ids: list[int]) -> str:
            toks = self.vocab.decode(new_ids)
            return self.tokenizer.detokenize(["\n" if char and t == EOS else t for t in toks])

        outs = _generate(self.model, self.vocab, ids, cfg, tokenizer=self.tokenizer, line_breaks=char)
        if char:
            texts = [prompt + detok(o) for o in outs]
        else:
            texts = [self.tokenizer.detokenize(self.tokenizer.tokenize(prompt) + self.vocab.decode(o)) if prompt
                     else detok(o) for o in outs]
        return texts[0] if len(texts) == 1 else texts


def _hyp(h, i: int) -> Hyp:
    """A Hyp as given, or one from an (id, text) / (id, text, ascore) tuple, its line `i`."""
    return h if isinstance(h, Hyp) else Hyp(str(h[0]), str(h[1]), float(h[2]) if len(h) > 2 else 0.0, i)


def load(path: str | Path, engine: str = "numpy", device: str = "auto") -> LanguageModel:
    """Load a model directory: `rnnkit.load("model/")`."""
    return LanguageModel.load(path, engine=engine, device=device)
