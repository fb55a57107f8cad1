"""What every fault-injection test asserts, in one place.

A fault (bad input, a full disk, a read-only directory, a second process) must end with a
non-zero exit, exactly one line on stderr that starts `rnnkit: error:` and names the file or
option at fault, no traceback, and every file that was there before byte-identical:

    before = snapshot(model_dir)
    rc, out, err = run_cli(["train", ...])
    assert_one_line_error(rc, err, "model_dir", "--resume")
    assert_unchanged(model_dir, before)

`run_cli` runs `rnnkit.cli.main` in this process (an exception escaping main fails the test
with its traceback: exactly the bug being looked for); `run_cli_process` runs `python -m
rnnkit` in a fresh interpreter, for what must be seen from outside (exit codes, locks, stderr
as a terminal user sees it).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `rnnkit ARGV` run in this process."""
    from rnnkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's usage errors
            rc = e.code if isinstance(e.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def run_cli_process(argv: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """`python -m rnnkit ARGV` in a fresh interpreter (text output captured)."""
    env = {**os.environ, "PYTHONPATH": SRC, **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "rnnkit", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, **kw)


def error_lines(err: str) -> list[str]:
    """The lines of stderr that are not progress output (tqdm bars end in \\r)."""
    return [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip()]


def assert_one_line_error(rc: int, err: str, *names: str) -> str:
    """Non-zero exit, one `rnnkit: error:` line on stderr naming each of `names`, no traceback;
    returns the line."""
    assert rc != 0, f"exit status 0; stderr: {err!r}"
    assert "Traceback" not in err, err
    lines = [ln for ln in error_lines(err) if ln.startswith("rnnkit: error:")]
    assert len(lines) == 1, f"expected one 'rnnkit: error:' line, got: {err!r}"
    for name in names:
        assert str(name) in lines[0], f"{name!r} not named in {lines[0]!r}"
    return lines[0]


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (relative path -> bytes); empty when it does not exist."""
    d = Path(directory)
    if not d.exists():
        return {}
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def assert_unchanged(directory: Path, before: dict[str, bytes]) -> None:
    """The files `before` held are all there with the same bytes, and nothing was added."""
    after = snapshot(directory)
    assert sorted(after) == sorted(before), f"files differ: added {set(after) - set(before)}, " \
                                            f"removed {set(before) - set(after)}"
    for name, data in before.items():
        assert after[name] == data, f"{name} changed"
