"""`python -m rnnkit` runs the command-line interface.

Under torchrun (WORLD_SIZE > 1) a process ends with os._exit once its output is flushed and the
process group is left: at interpreter shutdown a worker sometimes aborted ("terminate called
without an active exception", SIGABRT) while C++ threads were torn down, after its work was done
and every file written; torchrun then reported the whole run as failed."""

import os
import sys

from .cli import main

rc = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc if isinstance(rc, int) else 1)
sys.exit(rc)
