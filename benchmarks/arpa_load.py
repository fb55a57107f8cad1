"""ARPA loading and scoring: rnnkit.ngram against the kenlm module, on the same ~100 MB file.

The file: a Witten-Bell 5-gram of PTB train written by the tests' counter (tests/ngram_build.py;
~98 MB, 2.3M n-grams), built once into --arpa (reused when it exists). Each measurement runs in a
fresh subprocess (this script with --child), --reps times, interleaved:

- load: wall seconds of `read_arpa(path)` / `kenlm.Model(path)` (kenlm reads the ARPA text
  itself, no binary file); peak RSS (ru_maxrss) of the child, and its rise over the RSS just
  before loading (the libraries already imported);
- score: PTB test (3,761 sentences, 82,430 predictions with </s>): rnnkit's `batch_log10` over all
  sentences at once and `sentence_log10` one sentence at a time; kenlm's `full_scores` per
  sentence. The totals are compared (they must agree within 1e-3 in log10).

Medians over the repetitions go to benchmarks/results/arpa_load.json and a markdown table.

    python benchmarks/arpa_load.py [--reps 3] [--arpa /tmp/ptb5.arpa] [--order 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import write_results

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _sentences(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def child(impl: str, arpa: str) -> dict:
    """One measurement in this process: load, then score PTB test."""
    test = _sentences(PTB / "ptb.test.txt")
    if impl == "rnnkit":
        sys.path.insert(0, str(ROOT / "src"))
        from rnnkit.ngram import read_arpa as load
    else:
        import kenlm

        def load(p):
            return kenlm.Model(p)
    before = _rss_mb()
    t = time.perf_counter()
    lm = load(arpa)
    out = {"load_s": time.perf_counter() - t, "rss_before_mb": before,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_mb": _rss_mb()}
    if impl == "rnnkit":
        t = time.perf_counter()
        total = float(sum(a.sum() for a in lm.batch_log10(test)))
        out["score_batch_s"] = time.perf_counter() - t
        t = time.perf_counter()
        total1 = float(sum(lm.sentence_log10(s).sum() for s in test))
        out["score_loop_s"] = time.perf_counter() - t
        assert abs(total - total1) < 1e-6
    else:
        t = time.perf_counter()
        total = float(sum(p for s in test for p, _, _ in lm.full_scores(" ".join(s), bos=True, eos=True)))
        out["score_loop_s"] = time.perf_counter() - t
    out["test_log10"] = total
    out["predictions"] = sum(len(s) + 1 for s in test)
    return out


def measure(impl: str, arpa: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", impl, "--arpa", arpa], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def build(arpa: Path, order: int) -> float:
    sys.path.insert(0, str(ROOT / "tests"))
    from ngram_build import WittenBell

    t = time.perf_counter()
    WittenBell(_sentences(PTB / "ptb.train.txt"), order).write_arpa(str(arpa))
    return time.perf_counter() - t


def table(res: dict) -> str:
    rows = ["| implementation | load s | peak RSS MB | RSS rise MB | score PTB test s (batch / per sentence) |",
            "|---|---|---|---|---|"]
    for impl, r in res["impls"].items():
        batch = f"{r['score_batch_s']:.3f} / " if "score_batch_s" in r else "- / "
        rows.append(f"| {impl} | {r['load_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['rss_rise_mb']:.0f} | "
                    f"{batch}{r['score_loop_s']:.3f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--arpa", default="/tmp/ptb5.arpa")
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--child", choices=("rnnkit", "kenlm"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.arpa)))
        return
    arpa = Path(args.arpa)
    built = None if arpa.exists() else build(arpa, args.order)
    impls = ["rnnkit"]
    try:
        import kenlm  # noqa: F401
        impls.append("kenlm")
    except ImportError:
        print("kenlm not installed: rnnkit only")
    runs = {i: [] for i in impls}
    for _ in range(args.reps):
        for i in impls:
            runs[i].append(measure(i, str(arpa)))
    med = {i: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for i, rs in runs.items()}
    for r in med.values():
        r["rss_rise_mb"] = r["peak_rss_mb"] - r["rss_before_mb"]
    if "kenlm" in med:
        assert abs(med["kenlm"]["test_log10"] - med["rnnkit"]["test_log10"]) < 1e-3, med
    res = {"arpa": str(arpa), "arpa_mb": arpa.stat().st_size / 1e6, "build_s": built, "reps": args.reps,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
           "impls": med, "runs": runs}
    write_results(ROOT / "benchmarks" / "results" / "arpa_load.json", res)
    print(f"{arpa} ({res['arpa_mb']:.1f} MB), median of {args.reps}; {res['machine']}")
    print(table(res))


if __name__ == "__main__":
    main()
