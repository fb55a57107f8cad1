"""The one key scheme of `Trainer.state_dict()` in both engines, and the translator of old keys.

Every value is a numpy array; the driver stores the dict in trainer_state/optimizer.safetensors.

    step                    int64 ()     updates done (Adam's and RMSprop's step count too)
    lr                      float64 ()   the learning rate in use
    optimizer.m.<param>     first moment of <param> (Adam's exp_avg)                adam
    optimizer.v.<param>     second moment (Adam's exp_avg_sq, RMSprop's square_avg)  rmsprop, adam
    rng.numpy               uint8        the numpy engine's dropout Generator (UTF-8 JSON of its state)
    rng.torch_cpu           uint8        torch.get_rng_state()
    rng.torch_cuda          uint8        torch.cuda.get_rng_state(device), CUDA runs only
    amp.scale               float64      the fp16 GradScaler's scale (torch engine, amp fp16)
    amp.growth_tracker      int64        and its growth tracker

<param> is a name of rnnkit.params; SGD keeps no moment. A moment missing for a parameter
starts at zero (torch.optim creates them at the first update). Each engine reads the keys it
knows and leaves the other engine's RNG states alone, so a run may resume in the other engine
(its dropout stream then starts afresh from the run's seed). The training driver stores the
carried hidden state beside these keys, as carry.* (rnnkit.training.resume).

rnnkit 0.1.0 wrote two schemes: the numpy engine's (as above, but `rng` for `rng.numpy` and
an extra `optimizer.t`, always equal to `step`) and the torch engine's (`optim.step`,
`optim.lr`, `optim.exp_avg.<p>`, `optim.exp_avg_sq.<p>`, `optim.square_avg.<p>`). `translate`
turns either into this one; both Trainers call it in load_state_dict, so old trainer_state/
directories resume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .errors import CheckpointError

STEP, LR = "step", "lr"
MOMENT_PREFIX = "optimizer."
RNG_NUMPY, RNG_TORCH_CPU, RNG_TORCH_CUDA = "rng.numpy", "rng.torch_cpu", "rng.torch_cuda"
AMP_SCALE, AMP_GROWTH_TRACKER = "amp.scale", "amp.growth_tracker"

# rnnkit 0.1.0's keys: whole keys renamed, prefixes renamed, keys dropped
_OLD_KEYS = {"rng": RNG_NUMPY, "optim.step": STEP, "optim.lr": LR}
_OLD_PREFIXES = {"optim.exp_avg.": "optimizer.m.", "optim.exp_avg_sq.": "optimizer.v.",
                 "optim.square_avg.": "optimizer.v."}
_OLD_DROPPED = {"optimizer.t"}  # the numpy optimizer's update count: the same number as `step`


def moment_key(moment: str, param: str) -> str:
    """The key of one moment ("m" or "v") of one parameter: optimizer.<moment>.<param>."""
    return f"{MOMENT_PREFIX}{moment}.{param}"


def translate(d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A trainer state in this scheme, from this scheme or 0.1.0's (numpy or torch engine).
    Keys it does not know pass through unchanged."""
    out: dict[str, np.ndarray] = {}
    for key, value in d.items():
        if key in _OLD_DROPPED:
            continue
        new = _OLD_KEYS.get(key, key)
        for old_prefix, new_prefix in _OLD_PREFIXES.items():
            if key.startswith(old_prefix):
                new = new_prefix + key[len(old_prefix):]
        if new in out:
            raise CheckpointError(f"trainer state: {key} and another key both give {new}")
        out[new] = value
    return out


def read_progress(d: Mapping[str, np.ndarray]) -> tuple[int, float]:
    """(step, lr) of a translated trainer state; a CheckpointError when either is missing."""
    for key in (STEP, LR):
        if key not in d:
            raise CheckpointError(f"trainer state: {key!r} is missing")
    return int(np.asarray(d[STEP])), float(np.asarray(d[LR]))


def read_moments(d: Mapping[str, np.ndarray], optimizer: str, moments: Iterable[str],
                 shapes: Mapping[str, tuple[int, ...]]) -> dict[str, dict[str, np.ndarray]]:
    """The moments in a translated trainer state, {moment: {param: array}}, for an optimizer
    named `optimizer` that keeps `moments` over parameters of `shapes`. A moment it does not
    keep, of a parameter it does not have, or of the wrong shape is a CheckpointError."""
    out: dict[str, dict[str, np.ndarray]] = {m: {} for m in moments}
    for key, value in d.items():
        if not key.startswith(MOMENT_PREFIX):
            continue
        moment, _, param = key[len(MOMENT_PREFIX):].partition(".")
        if moment not in out or param not in shapes:
            kept = ", ".join(out) or "no moments"
            raise CheckpointError(f"trainer state: unexpected {key} (the {optimizer} optimizer keeps {kept} "
                                  "for the model's parameters)")
        if np.shape(value) != tuple(shapes[param]):
            raise CheckpointError(f"trainer state: {key} has shape {np.shape(value)}, expected {tuple(shapes[param])}")
        out[moment][param] = np.asarray(value)
    return out
