"""The subcommand handlers behind `rnnkit`: each takes parsed arguments and returns an exit code."""

from __future__ import annotations

import json
import math
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _open_out(path: str):
    if path == "-":
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8") as f:
            yield f


@contextmanager
def _progress_bar(total: int, what: str):
    """A tqdm bar on stderr while scoring (only when stderr is a terminal); yields its update."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=what, unit="sent", file=sys.stderr, dynamic_ncols=True, leave=False,
               disable=None if total >= 1000 else True)
    try:
        yield bar.update
    finally:
        bar.close()


def read_input_lines(path: str) -> list[str]:
    """Lines of a file or of stdin for '-', with the same checks (rnnkit.data.read_text), split
    on "\n" only as the corpus readers do (str.splitlines would also split on form feeds and
    Unicode line separators, and output lines would drift from input lines)."""
    from ..data.readers import decode_text, read_text, split_lines

    text = decode_text(sys.stdin.buffer.read(), "<stdin>") if path == "-" else read_text(path)
    return split_lines(text)


def cmd_train(args) -> int:
    from ..training import train
    from .train import resolve_train_args

    kw = resolve_train_args(args)
    res = train(kw["corpus"], args.out, valid=kw["valid"], model=kw["model"], tokenizer=kw["tokenizer"],
                config=kw["config"], resume=args.resume, progress=not args.quiet)
    if not res.is_main:
        return 0
    level = kw["tokenizer"].level
    metric = (f"valid loss {res.valid.loss:.4f} nats/char ({res.valid.bpc:.3f} bits/char)" if level == "char"
              else f"valid perplexity {res.valid.ppl:,.2f}")
    print(f"done ({res.stopped}): {res.steps:,} steps, {res.tokens:,} tokens in {res.seconds:,.1f} s; best {metric} "
          f"(unigram baseline {res.unigram.ppl:,.2f}); model saved in {res.model_dir}")
    return 0


def cmd_eval(args) -> int:
    from .. import api
    from ..data import read_sentences

    lm = api.load(args.model, engine=args.engine, device=args.device)
    level = lm.tokenizer_config.level
    sents = read_sentences(args.file, format=args.corpus_format, level=level)
    mode = args.mode or lm.info.get("train", {}).get("batching", "sentences")
    res = lm.evaluate(sents, mode=mode, batch_size=args.batch_size)
    line = f"{args.file}: {len(sents):,} sentences, {res.count:,} tokens predicted, {res.oov:,} OOV; loss {res.loss:.4f} nats, perplexity {res.ppl:,.2f}"
    if level == "char":
        line += f", {res.bpc:.4f} bits/char"
    print(line + f" ({mode} mode)")
    return 0


def cmd_score(args) -> int:
    from .. import api
    from ..errors import ConfigError
    from ..inference.score import Summary, log_base_value, to_base

    if args.format == "srilm" and args.log_base not in (None, "10"):
        # SRILM's logprob= is log10 by definition: that is what ngram -ppl prints and its tools read
        raise ConfigError(f"--log-base: --format srilm prints log10 (SRILM's logprob=); "
                          f"--log-base {args.log_base} cannot be used with it")
    log_base = args.log_base or ("10" if args.format == "srilm" else "e")
    lines = read_input_lines(args.file)
    lm = api.load(args.model, engine=args.engine, device=args.device)
    base = log_base_value(log_base)
    with _progress_bar(len(lines), "scoring") as update:
        scores = lm.score_sentences(lines, bos=args.bos, eos=args.eos, oov=args.oov, batch_size=args.batch_size,
                                    progress=update)
    summ = Summary.of(scores)
    name = "<stdin>" if args.file == "-" else args.file

    def lb(x: float) -> float:
        return to_base(x, base)

    with _open_out(args.output) as out:
        if args.format == "srilm":
            out.write(f"file {name}: {summ.sentences} sentences, {summ.words} words, {summ.oovs} OOVs\n")
            out.write(f"0 zeroprobs, logprob= {lb(summ.logprob):.6g} ppl= {summ.ppl:.6g} ppl1= {summ.ppl1:.6g}\n")
            return 0
        for s in scores:
            if args.format == "jsonl":
                obj = {"text": s.text, "logprob": lb(s.logprob), "log_base": log_base, "tokens": s.num_scored,
                       "words": s.num_words, "oov": s.num_oov, "ppl": s.ppl}
                if args.per_token:
                    obj["token_scores"] = [{"token": t.token, "logprob": lb(t.logprob) if t.scored else None,
                                            "oov": t.is_oov} for t in s.tokens]
                out.write(json.dumps(obj, ensure_ascii=False) + "\n")
                continue
            if args.per_token:
                for t in s.tokens:
                    val = f"{lb(t.logprob):.6f}" if t.scored else "skipped"
                    flag = "\t(oov)" if t.is_oov else ""
                    out.write(f"  {t.token}\t{val}{flag}\n")
            out.write(f"{lb(s.logprob):.6f}\t{s.num_scored}\t{s.ppl:.4f}\t{s.text}\n")
    if args.format == "text":
        print(f"{summ.sentences} sentences, {summ.words} words, {summ.oovs} OOVs; logprob (base {log_base}) "
              f"{lb(summ.logprob):.4f}, ppl {summ.ppl:.4f}, ppl1 {summ.ppl1:.4f}", file=sys.stderr)
    return 0


def cmd_rescore(args) -> int:
    from .. import api
    from ..inference.rescore import format_best, format_rescored, parse_nbest

    lines = read_input_lines(args.nbest)
    hyps = parse_nbest(lines, args.format, "<stdin>" if args.nbest == "-" else args.nbest)
    first = {}
    for h in hyps:
        first.setdefault(h.id, h.line)
    lm = api.load(args.model, engine=args.engine, device=args.device)
    with _progress_bar(len(hyps), "rescoring") as update:
        groups = lm.rescore(hyps, lm_weight=args.lm_weight, word_penalty=args.word_penalty, log_base=args.log_base,
                            batch_size=args.batch_size, progress=update)
    with _open_out(args.output) as out:
        out.write("\n".join(format_rescored(groups)) + "\n")
    if args.best:
        with _open_out(args.best) as out:
            out.write("\n".join(format_best(groups, args.format)) + "\n")
    changed = sum(g[0].line != first[uid] for uid, g in groups.items())
    print(f"rescored {len(hyps)} hypotheses for {len(groups)} id(s); the best changed for {changed} of them",
          file=sys.stderr)
    return 0


def cmd_plot(args) -> int:
    from ..training.curves import plot_run

    print(plot_run(args.run, args.output))
    return 0


def cmd_download(args) -> int:
    from ..data import download_dataset

    dest = Path(args.dest) if args.dest else Path.home() / ".cache" / "rnnkit" / "datasets"
    for path in download_dataset(args.name, dest):
        print(path)
    return 0


def cmd_generate(args) -> int:
    from .. import api

    lm = api.load(args.model, engine=args.engine, device=args.device)
    max_len = args.max_len or (500 if lm.tokenizer_config.level == "char" else 50)
    out = lm.generate(args.prompt, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                      greedy=args.greedy, beam=args.beam, length_penalty=args.length_penalty, max_len=max_len,
                      min_len=args.min_len, num_samples=args.num_samples, seed=args.seed, stop=args.stop)
    for text in [out] if isinstance(out, str) else out:
        print(text)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), minutes=args.minutes, engine=args.engine, device=args.device, seed=args.seed,
                    progress=not args.quiet)


def cmd_gradcheck(args) -> int:
    from ..numpy_engine import gradcheck

    # a relu pre-activation too close to the kink raises ConfigError ("choose another seed")
    errors = gradcheck(args.cell, num_layers=args.layers, nonlinearity=args.nonlinearity,
                       tie_weights=args.tied, seed=args.seed)
    width = max(len(k) for k in errors)
    print(f"gradient check: {args.cell}{' ' + args.nonlinearity if args.cell == 'rnn' else ''}, {args.layers} layer(s), "
          "full BPTT, float64 centred differences")
    for k, v in errors.items():
        print(f"  {k:<{width}}  max relative error {v:.2e}  {'ok' if v <= args.tolerance else 'FAIL'}")
    worst = max(errors.values())
    ok = worst <= args.tolerance and not math.isnan(worst)
    print(f"{'PASS' if ok else 'FAIL'}: worst {worst:.2e} (tolerance {args.tolerance:.0e})")
    return 0 if ok else 1
