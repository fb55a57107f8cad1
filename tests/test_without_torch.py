"""Everything but the torch engine works with PyTorch absent (torch is an optional extra)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import TINY_CORPUS

SCRIPT = r"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError, as without PyTorch
from rnnkit.cli import main
corpus, out = sys.argv[1], sys.argv[2]
rc = main(["train", corpus, "--out", out, "--hidden", "8", "--embed", "8", "--epochs", "1",
           "--batch-size", "2", "--seq-len", "5", "--quiet"])
assert rc == 0, rc
for argv in (["score", out, corpus], ["eval", out, corpus], ["generate", out, "--seed", "1"],
             ["rescore", out, "-"], ["gradcheck", "--cell", "gru"]):
    if argv[0] == "rescore":
        import io
        sys.stdin = io.TextIOWrapper(io.BytesIO(b"u1\tthe cat sat .\nu1\tcat the sat .\n"))
    assert main(argv) == 0, argv
arpa, slf = out + ".arpa", out + ".slf"
open(arpa, "w").write("\\data\\\nngram 1=3\n\n\\1-grams:\n-99\t<s>\n-1\t</s>\n-0.5\t<unk>\n\n\\end\\\n")
open(slf, "w").write("VERSION=1.0\nUTTERANCE=u1\nN=3 L=2\nI=0\nI=1\nI=2\n"
                     "J=0 S=0 E=1 W=the a=-1 l=-1\nJ=1 S=1 E=2 W=cat a=-1 l=-1\n")
for argv in (["score", out, corpus, "--mix-lm", arpa], ["mix-weight", out, "--mix-lm", arpa, corpus],
             ["lattice", out, slf, "--lattice-format", "slf", "-o", out + ".rescored.slf"]):
    assert main(argv) == 0, argv
assert main(["score", out, corpus, "--engine", "torch"]) == 1  # a clear error, not a traceback
assert "torch" not in {m for m in sys.modules if sys.modules[m] is not None}
print("NO-TORCH-OK")
"""


def test_numpy_path_without_torch(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 10) + "\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(corpus), str(tmp_path / "m")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NO-TORCH-OK" in proc.stdout
    assert "pip install 'rnnkit[torch]'" in proc.stderr  # the one-line error for --engine torch
    assert "Traceback" not in proc.stderr
