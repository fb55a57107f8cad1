"""Word tokenizer speed: seconds per MB for whitespace splitting, the old regex scan and the
new default regex path (whitespace chunks through a bounded cache).

Corpora, one string per sentence as `rnnkit.data.read_sentences` gives them to training:
PTB train ("ptb"), the Reddit sample ("reddit-sample:all", the CSV's sentences) and
python-docs ("python-docs:all", built in); a corpus whose file is missing is skipped with a
note. Tokenizers, called once per sentence:

- whitespace: `WordTokenizer(split="whitespace").tokenize` (str.split; the baseline);
- regex-old: `_tokenize_reference`, the one scan over the whole text that the regex path was;
- regex-new: `WordTokenizer().tokenize` (split="regex", the default).

MB = UTF-8 bytes of the sentences / 1e6. Before timing, regex-new's tokens are compared with
regex-old's on every sentence. Then one untimed pass of each (which also fills the chunk
cache) and --reps timed passes, the three interleaved in one process; a pass goes over a
small corpus several times, to at least 2 MB. The table gives median CPU seconds (this
process's, time.process_time: on the shared 2-core machine wall time also counts the other
jobs) per MB; "cold" is regex-new's first pass with an empty cache; new/ws is the median of
the per-repetition ratios. Wall-clock medians are in the JSON too. Issue target: regex-new
<= whitespace on PTB. Results go to benchmarks/results/tokenize_speed.json.

    python benchmarks/tokenize_speed.py [--reps 9] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from common import write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit.data import read_sentences
from rnnkit.errors import RnnkitError
from rnnkit.text import WordTokenizer
from rnnkit.text.tokenize import _CHUNKS, _tokenize_reference

CORPORA = {"ptb-train": "ptb", "reddit-sample": "reddit-sample:all", "python-docs": "python-docs:all"}
METHODS = {
    "whitespace": WordTokenizer(split="whitespace").tokenize,
    "regex-old": _tokenize_reference,
    "regex-new": WordTokenizer().tokenize,
}


def load_corpora(quick: bool) -> dict[str, list[str]]:
    """name -> sentences, for the corpora that are here (the first 3,000 with --quick)."""
    out = {}
    for name, source in CORPORA.items():
        try:
            lines = read_sentences(source, level="word")
        except RnnkitError as e:
            print(f"({name} skipped: {e})")
            continue
        out[name] = lines[:3000] if quick else lines
    return out


def one_pass(fn, lines: list[str], rounds: int = 1) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to tokenize every line `rounds` times (tokens dropped)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for line in lines:
            fn(line)
    return time.process_time() - cpu, time.perf_counter() - wall


def differing_lines(lines: list[str]) -> int:
    new = METHODS["regex-new"]
    return sum(new(line) != _tokenize_reference(line) for line in lines)


def measure(lines: list[str], reps: int) -> dict:
    """Seconds per MB of each method (all repetitions, CPU and wall), the cold pass, ratios."""
    mb = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    rounds = max(1, math.ceil(2.0 / mb))
    _CHUNKS.clear()
    cold = one_pass(METHODS["regex-new"], lines)[0] / mb
    for fn in METHODS.values():
        one_pass(fn, lines)
    cpu: dict[str, list[float]] = {name: [] for name in METHODS}
    wall: dict[str, list[float]] = {name: [] for name in METHODS}
    for _ in range(reps):
        for name, fn in METHODS.items():
            c, w = one_pass(fn, lines, rounds)
            cpu[name].append(c / mb / rounds)
            wall[name].append(w / mb / rounds)
    med = {name: statistics.median(v) for name, v in cpu.items()}
    paired = [n / w for n, w in zip(cpu["regex-new"], cpu["whitespace"])]
    return {"sentences": len(lines), "mb": mb, "rounds_per_pass": rounds,
            "cpu_s_per_mb_runs": cpu, "cpu_s_per_mb": med, "regex_new_cold_cpu_s_per_mb": cold,
            "wall_s_per_mb": {name: statistics.median(v) for name, v in wall.items()},
            "new_over_whitespace": statistics.median(paired),
            "old_over_new": med["regex-old"] / med["regex-new"],
            "chunk_cache": {"chunks": len(_CHUNKS), "identity": len(_CHUNKS.identity)}}


def print_table(results: dict[str, dict]) -> None:
    print(f"{'corpus':<15}{'MB':>7}{'sentences':>11}{'whitespace':>12}{'regex-old':>11}"
          f"{'regex-new':>11}{'new cold':>10}{'new/ws':>8}{'old/new':>9}")
    for name, r in results.items():
        s = r["cpu_s_per_mb"]
        print(f"{name:<15}{r['mb']:>7.2f}{r['sentences']:>11,}{s['whitespace']:>12.4f}"
              f"{s['regex-old']:>11.4f}{s['regex-new']:>11.4f}{r['regex_new_cold_cpu_s_per_mb']:>10.4f}"
              f"{r['new_over_whitespace']:>8.2f}{r['old_over_new']:>9.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=9, help="timed passes per method (median; the machine is noisy)")
    ap.add_argument("--quick", action="store_true", help="3,000 sentences per corpus, 3 passes")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else args.reps
    corpora = load_corpora(args.quick)
    results: dict[str, dict] = {}
    for name, lines in corpora.items():
        bad = differing_lines(lines)
        print(f"{name}: {len(lines):,} sentences, regex-new == regex-old on all: {bad == 0}"
              + (f" ({bad} differ)" if bad else ""))
        results[name] = {"identical": bad == 0, "differing": bad, **measure(lines, reps)}
    print(f"\nCPU seconds per MB, median of {reps} interleaved passes"
          f" (load average {os.getloadavg()[0]:.1f})")
    print_table(results)
    write_results(ROOT / "benchmarks" / "results" / "tokenize_speed.json", {
        "benchmark": "tokenize_speed", "repetitions": reps, "quick": args.quick,
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "load_average": os.getloadavg(),
        "target": "regex-new <= whitespace s/MB on ptb-train", "corpora": results,
    })
    return 0 if all(r["identical"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
