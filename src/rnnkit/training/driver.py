"""The one engine-agnostic training driver.

corpus -> sentences -> tokens -> vocabulary -> ids -> batches (stream or sentences) ->
`engine.Trainer.step` -> validation perplexity each epoch -> best model kept in MODEL_DIR,
`metrics.jsonl` beside it, resumable state in MODEL_DIR/trainer_state/.

Stream mode: the corpus is one long sequence `<s> w1 .. wn </s> <s> ...` cut into B columns;
the hidden state is carried from window to window (PTB / char-rnn style). Sentence mode:
padded batches of whole sentences, state reset per batch (the tutorial's style).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import checkpoint
from ..config import ModelConfig, TokenizerConfig, TrainConfig
from ..data import KNOWN_DATASETS, StreamBatcher, read_sentences, sentence_batches, stream_ids
from ..data.datasets import parse_source
from ..engines import build_model, get_engine
from ..errors import ConfigError, InputError
from ..inference.evaluate import EvalResult, evaluate_encoded, unigram_baseline
from ..text import Vocab, make_tokenizer
from .resume import load_trainer_state, save_trainer_state, state_from_arrays
from .schedule import Schedule


@dataclass
class Corpus:
    """A training corpus made ready: tokenizer, vocabulary, id arrays for train and validation."""

    tokenizer: Any
    vocab: Vocab
    train: list[np.ndarray]  # ids per sentence, no specials
    valid: list[np.ndarray]
    train_ids: np.ndarray  # stream form: <s> ids </s> ...
    valid_ids: np.ndarray
    valid_source: str  # where the validation data came from, for messages


def _encode(sentences: list[str], tokenizer, vocab: Vocab | None, tok_cfg: TokenizerConfig):
    toks = [tokenizer.tokenize(s) for s in sentences]
    if vocab is None:
        vocab = Vocab.build(toks, max_size=tok_cfg.max_vocab, min_count=tok_cfg.min_count)
    return [np.asarray(vocab.encode(t), dtype=np.int64) for t in toks], vocab


def valid_split_of(corpus: str) -> str | None:
    """"ptb" -> "ptb:valid": the validation split of a known dataset named for its training split."""
    parsed = parse_source(corpus) if isinstance(corpus, str) else None
    if parsed is None or parsed[1] != "train" or "valid" not in KNOWN_DATASETS[parsed[0]].splits:
        return None
    return f"{parsed[0]}:valid"


def prepare_corpus(corpus: str, valid: str | None, tok_cfg: TokenizerConfig, cfg: TrainConfig,
                   vocab: Vocab | None = None) -> Corpus:
    """Read, split off validation (a --valid file, the dataset's own split, or the last
    valid_fraction of sentences), tokenize and build the vocabulary from training data only."""
    read = {"format": cfg.corpus_format, "csv_column": cfg.csv_column, "level": tok_cfg.level}
    train_sents = read_sentences(corpus, **read)
    if valid is not None:
        valid_sents, valid_source = read_sentences(valid, **read), str(valid)
    elif (split := valid_split_of(corpus)) is not None:
        valid_sents, valid_source = read_sentences(split, **read), split
    else:
        n_valid = max(1, round(len(train_sents) * cfg.valid_fraction))
        if len(train_sents) - n_valid < 1:
            raise InputError(f"{corpus}: only {len(train_sents)} sentence(s); too few to hold out validation data (give --valid FILE)")
        train_sents, valid_sents = train_sents[:-n_valid], train_sents[-n_valid:]
        valid_source = f"last {cfg.valid_fraction:.0%} of {corpus}"
    tokenizer = make_tokenizer(tok_cfg)
    train_enc, vocab = _encode(train_sents, tokenizer, vocab, tok_cfg)
    valid_enc, _ = _encode(valid_sents, tokenizer, vocab, tok_cfg)
    if sum(len(s) + 1 for s in train_enc) < 2:
        raise InputError(f"{corpus}: no tokens to train on")
    return Corpus(tokenizer, vocab, train_enc, valid_enc, stream_ids(train_enc, vocab), stream_ids(valid_enc, vocab), valid_source)


@dataclass
class TrainResult:
    model_dir: Path
    valid: EvalResult  # best validation result
    unigram: EvalResult  # add-one unigram baseline on the same validation data
    steps: int
    tokens: int
    seconds: float
    stopped: str  # epochs | max_steps | max_minutes | early_stop
    history: list[dict] = field(default_factory=list)
    is_main: bool = True  # rank 0 of a distributed run (the one that writes and reports)


class _Progress:
    """A tqdm bar on stderr (or nothing), with loss / ppl / tokens per second."""

    def __init__(self, enabled: bool, total: int, initial: int, desc: str):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="batch", file=sys.stderr,
                            dynamic_ncols=True, leave=False)

    def update(self, nats: float, count: int, tok_s: float) -> None:
        if self.bar is not None:
            loss = nats / max(count, 1)
            self.bar.set_postfix_str(f"loss {loss:.3f} ppl {math.exp(min(loss, 50)):.1f} {tok_s:,.0f} tok/s", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(corpus: str, out: str | Path, *, valid: str | None = None, model: dict | None = None,
          tokenizer: TokenizerConfig | None = None, config: TrainConfig | None = None,
          resume: bool = False, progress: bool = True, log: Callable[[str], None] | None = None,
          clock: Callable[[], float] = time.perf_counter) -> TrainResult:
    """Train a model on `corpus` (a file or a known dataset name) and keep the best in `out`.

    `clock` (seconds, monotonic) times the run: `max_minutes`, the `seconds` of metrics rows and
    of the result, tokens per second; tests inject a fake one."""
    cfg = config or TrainConfig()
    cfg.validate("train options")
    tok_cfg = tokenizer or TokenizerConfig()
    tok_cfg.validate("tokenizer options")
    out = Path(out)
    rank, world = 0, 1
    device = cfg.device
    if cfg.engine == "torch":
        get_engine("torch")
        from ..torch_engine.distributed import init_distributed

        rank, world, local_rank = init_distributed(device)
        if world > 1 and device in ("cuda", "auto"):
            import torch

            if torch.cuda.is_available():
                device = f"cuda:{local_rank}"
    main = rank == 0
    say = (log or (lambda m: print(m, file=sys.stderr))) if main else (lambda m: None)

    resumed = load_trainer_state(out, cfg) if resume else None
    if resume and resumed is None:
        say(f"nothing to resume in {out} (no trainer_state/ yet): starting a new run")
    data = prepare_corpus(corpus, valid, tok_cfg, cfg, vocab=resumed.vocab if resumed else None)
    mcfg = resumed.model_cfg if resumed else ModelConfig(vocab_size=len(data.vocab), **(model or {}))
    mcfg.validate("model options")
    lm = build_model(cfg.engine, mcfg, resumed.params if resumed else None, seed=cfg.seed, device=device)
    trainer = get_engine(cfg.engine).Trainer(lm, cfg)
    if resumed:
        trainer.load_state_dict(resumed.optimizer)
    say(f"corpus: {len(data.train):,} sentences, {len(data.train_ids):,} tokens; validation: {len(data.valid):,} "
        f"sentences ({data.valid_source}); vocabulary {len(data.vocab):,}; {mcfg.cell} {mcfg.num_layers}x{mcfg.hidden_dim}, "
        f"{lm.num_parameters():,} parameters; engine {cfg.engine}" + (f", {world} processes" if world > 1 else ""))

    if cfg.batching == "stream":
        batcher = StreamBatcher(data.train_ids, cfg.batch_size, cfg.seq_len, rank=rank, world_size=world)
        per_epoch = len(batcher)
        if per_epoch == 0:
            raise InputError(f"{corpus}: {len(data.train_ids):,} tokens is too little for {world * cfg.batch_size} columns "
                             f"of at least 2 tokens (lower --batch-size)")
    else:
        per_epoch = -(-len(data.train) // (cfg.batch_size * world))
    total_steps = cfg.max_steps or per_epoch * cfg.epochs
    sched = Schedule.from_dict(resumed.state["schedule"]) if resumed else Schedule.from_config(cfg, total_steps, world)
    # the plan of this run's options: a run stopped by --max-steps planned to end there, and
    # max_steps / epochs may change on --resume (else cosine would sit at lr 0 from the old end)
    sched.total_steps = max(1, total_steps)
    unigram = unigram_baseline(data.train_ids, data.valid_ids, data.vocab)

    def evaluate() -> EvalResult:
        return evaluate_encoded(lm, data.valid, data.vocab, cfg.batching, cfg.eval_batch_size, max(cfg.seq_len, 64))

    st = resumed.state if resumed else {"step": 0, "epoch": 0, "batch": 0, "tokens": 0, "seconds": 0.0,
                                        "best_loss": None, "bad_evals": 0, "epoch_nats": 0.0, "epoch_count": 0}
    history = _read_history(out / "metrics.jsonl", st["step"]) if resumed else []
    if main:
        out.mkdir(parents=True, exist_ok=True)
        _write_history(out / "metrics.jsonl", history)
    best = EvalResult(st["best_loss"], 1) if st["best_loss"] is not None else None  # .loss = best_loss
    carry = state_from_arrays(resumed.carry) if resumed and resumed.carry else None
    t_start = clock() - st["seconds"]
    stopped = "epochs"

    def save_state(state) -> None:
        if main:
            st["seconds"] = clock() - t_start
            st["schedule"] = sched.to_dict()
            save_trainer_state(out, cfg, mcfg, tok_cfg, data.vocab, lm.state_dict(), trainer.state_dict(), st,
                               state if cfg.batching == "stream" else None)

    def log_row(row: dict) -> None:
        history.append(row)
        if main:
            with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    log_every = max(1, per_epoch // 20)  # about 20 training-loss points per epoch for the curves
    interval = {"nats": 0.0, "count": 0}

    def validate(reason: str) -> bool:
        """Evaluate, log a metrics line, keep the best model; returns True when it improved."""
        nonlocal best
        res = evaluate()
        improved = best is None or res.loss < best.loss
        if improved:
            best = res
            st["best_loss"], st["bad_evals"] = res.loss, 0
            if main:
                checkpoint.save(out, mcfg, tok_cfg, data.vocab, lm.state_dict(),
                                extra={"engine": cfg.engine, "valid_loss": res.loss, "valid_ppl": res.ppl,
                                       "valid_tokens": res.count, "step": st["step"], "train": cfg.to_dict()})
        else:
            st["bad_evals"] += 1
        seconds = clock() - t_start
        row = {"kind": "valid", "step": st["step"], "epoch": st["epoch"] + st["batch"] / max(per_epoch, 1), "tokens": st["tokens"],
               "seconds": round(seconds, 3), "lr": trainer.lr, "valid_loss": res.loss, "valid_ppl": res.ppl,
               "valid_bpc": res.bpc if tok_cfg.level == "char" else None, "reason": reason,
               "train_loss": st["epoch_nats"] / st["epoch_count"] if st["epoch_count"] else None}
        log_row(row)
        metric = f"valid bpc {res.bpc:.3f}" if tok_cfg.level == "char" else f"valid ppl {res.ppl:,.2f}"
        train_part = f"train loss {row['train_loss']:.3f}, " if row["train_loss"] is not None else ""
        say(f"{reason} {row['epoch']:.2f}: {train_part}{metric} (loss {res.loss:.4f}), lr {trainer.lr:.3g}, "
            f"{st['tokens'] / max(seconds, 1e-9):,.0f} tok/s{' *best, saved' if improved else ''}")
        return improved

    while st["epoch"] < cfg.epochs and stopped == "epochs":
        if cfg.batching == "stream":
            batches = batcher.windows(start=st["batch"])
            if st["batch"] == 0 or carry is None:
                carry = lm.init_hidden(cfg.batch_size)
        else:
            all_batches = list(sentence_batches(data.train, data.vocab, cfg.batch_size * world,
                                                rng=np.random.default_rng([cfg.seed, st["epoch"]])))
            batches = iter(all_batches[st["batch"]:])
        bar = _Progress(progress and main, per_epoch, st["batch"], f"epoch {st['epoch'] + 1}/{cfg.epochs}")
        t_epoch, tok_epoch = clock(), 0
        try:
            for x, y, mask in batches:
                trainer.lr = sched.lr_at(st["step"])
                if cfg.batching == "stream":
                    nats, count, carry = trainer.step(x, y, mask, carry)
                    seen = getattr(trainer, "global_tokens", count) if world > 1 else count
                else:
                    nats, count, seen = _sentence_step(trainer, lm, x, y, mask, cfg, rank, world)
                st["step"] += 1
                st["batch"] += 1
                st["tokens"] += seen
                st["epoch_nats"] += nats
                st["epoch_count"] += count
                interval["nats"] += nats
                interval["count"] += count
                if st["step"] % log_every == 0 and interval["count"]:
                    log_row({"kind": "train", "step": st["step"], "epoch": st["epoch"] + st["batch"] / per_epoch,
                             "tokens": st["tokens"], "seconds": round(clock() - t_start, 3),
                             "lr": trainer.lr, "train_loss": interval["nats"] / interval["count"]})
                    interval["nats"], interval["count"] = 0.0, 0
                tok_epoch += seen
                bar.update(st["epoch_nats"], st["epoch_count"], tok_epoch / max(clock() - t_epoch, 1e-9))
                if cfg.max_steps and st["step"] >= cfg.max_steps:
                    stopped = "max_steps"
                elif cfg.max_minutes and clock() - t_start >= cfg.max_minutes * 60:
                    stopped = "max_minutes"
                if stopped != "epochs":
                    break
                if cfg.eval_every and st["step"] % cfg.eval_every == 0 and st["batch"] < per_epoch:
                    sched.after_eval(validate("step"))
                    if cfg.early_stop and st["bad_evals"] >= cfg.early_stop:
                        stopped = "early_stop"
                        break
                    if not cfg.checkpoint_every:
                        save_state(carry)
                if cfg.checkpoint_every and st["step"] % cfg.checkpoint_every == 0:
                    save_state(carry)
        finally:
            bar.close()
        if stopped == "epochs" or st["batch"] >= per_epoch:
            sched.after_epoch(st["epoch_nats"] / max(st["epoch_count"], 1))
            improved = validate("epoch")
            sched.after_eval(improved)
            st["epoch"] += 1
            st["batch"], st["epoch_nats"], st["epoch_count"] = 0, 0.0, 0
            if cfg.early_stop and st["bad_evals"] >= cfg.early_stop and stopped == "epochs":
                stopped = "early_stop"
        elif stopped != "early_stop":
            # logged, and kept if best, but not one of the run's evaluations: best_loss and
            # bad_evals (plateau, early stopping) stay as they were, so --resume goes on exactly
            # as a run that never stopped
            kept = st["best_loss"], st["bad_evals"]
            validate("stop")
            st["best_loss"], st["bad_evals"] = kept
        save_state(carry)
    seconds = clock() - t_start
    if best is None:
        raise ConfigError("no training happened (--epochs 0?)")
    if world > 1:
        from ..torch_engine.distributed import cleanup

        cleanup()
    return TrainResult(out, best, unigram, st["step"], st["tokens"], seconds, stopped, history, is_main=main)


def _sentence_step(trainer, lm, x, y, mask, cfg: TrainConfig, rank: int, world: int):
    """One padded batch of sentences: this rank's rows, cut into seq_len windows with the state
    carried. Returns (this rank's nats, its token count, the token count over all ranks)."""
    if world > 1:
        rows = np.array_split(np.arange(x.shape[1]), world)[rank]
        x, y, mask = x[:, rows], y[:, rows], mask[:, rows]
    state, nats, count, seen = lm.init_hidden(x.shape[1]), 0.0, 0, 0
    for t0 in range(0, x.shape[0], cfg.seq_len):
        sl = slice(t0, t0 + cfg.seq_len)
        if not mask[sl].any():
            continue
        n, c, state = trainer.step(x[sl], y[sl], mask[sl], state)
        nats += n
        count += c
        seen += getattr(trainer, "global_tokens", c) if world > 1 else c
    return nats, count, seen


def _read_history(path: Path, upto_step: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if row.get("step", 0) <= upto_step:
            rows.append(row)
    return rows


def _write_history(path: Path, rows: list[dict]) -> None:
    checkpoint.atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
