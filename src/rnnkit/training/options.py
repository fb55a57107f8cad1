"""The options of a run: those chosen (on the command line, in a recipe, by the caller) over the
defaults for a new run, or over the saved run's for a resumed one, which must agree with what was
chosen on everything that defines the model and the data: the model and tokenizer options, the
train options but RESUMABLE_CHANGES, and the corpus and validation files (when the resume point
records them; those of rnnkit 0.1.0 do not). Every difference is named in one refusal.

The budgets of a run (BUDGETS: --max-steps, --max-minutes) are not taken from the saved run:
one stopped by its budget and resumed without it goes on to its end.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ModelConfig, Settings, TokenizerConfig, TrainConfig, field_default
from ..errors import ConfigError
from .corpus import describe_parts
from .resume import ResumePoint

# train options that may change between a run and its resumption (docs/contracts.md, "Run directories")
RESUMABLE_CHANGES = ("checkpoint_every", "early_stop", "epochs", "eval_every", "max_minutes", "max_steps")
BUDGETS = ("max_minutes", "max_steps")  # not given on --resume: their defaults (no limit), not the saved values


@dataclass
class Chosen:
    """The options chosen for a run, per section (those not chosen: defaults, or the saved run's)."""

    model: dict[str, Any]
    tokenizer: dict[str, Any]
    train: dict[str, Any]

    @classmethod
    def of(cls, model: dict | None, tokenizer: TokenizerConfig | dict | None,
           config: TrainConfig | dict | None) -> Chosen:
        """From train()'s arguments: a dict holds the options chosen, a config object chooses
        every field, None chooses none."""
        return cls(dict(model or {}), _as_dict(tokenizer), _as_dict(config))


def _as_dict(options: Settings | dict | None) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, Settings):
        return dataclasses.asdict(options)  # type: ignore[call-overload]
    return dict(options)


def resolve(chosen: Chosen, point: ResumePoint | None, data: dict, where: str | Path
            ) -> tuple[dict[str, Any], TokenizerConfig, TrainConfig]:
    """(model options, tokenizer options, train options) of a run: new (`point` None), or
    resumed from `point`, refused with a ConfigError naming `where` and every option (and data
    source) that differs from the saved run's."""
    if point is None:
        return (chosen.model, TokenizerConfig.from_dict(chosen.tokenizer, "tokenizer options"),
                TrainConfig.from_dict(chosen.train, "train options"))
    saved = {"model": _fields(ModelConfig, dataclasses.asdict(point.model_cfg), skip=("vocab_size",)),
             "tokenizer": dataclasses.asdict(point.tok_cfg or TokenizerConfig()),
             "train": _fields(TrainConfig, point.train if isinstance(point.train, dict) else {})}
    ModelConfig.from_dict({**saved["model"], **chosen.model, "vocab_size": point.model_cfg.vocab_size},
                          "model options")
    tok = TokenizerConfig.from_dict({**saved["tokenizer"], **chosen.tokenizer}, "tokenizer options")
    kept = {k: v for k, v in saved["train"].items() if k not in BUDGETS}
    cfg = TrainConfig.from_dict({**kept, **chosen.train}, "train options")
    diffs = differences(saved, chosen) + data_differences(point.data, data)
    if diffs:
        raise ConfigError(f"{where}: --resume with options that differ from the saved run: {'; '.join(diffs)} "
                          f"(these options may change on resume: {', '.join(RESUMABLE_CHANGES)})")
    return saved["model"], tok, cfg


def _fields(cls: type, values: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """`values` as a full set of the fields of `cls`: unknown keys dropped, missing ones (a
    resume point written before they existed) at their defaults."""
    return {f.name: values[f.name] if f.name in values else field_default(f)
            for f in dataclasses.fields(cls) if f.name not in skip}


def differences(saved: dict[str, dict[str, Any]], chosen: Chosen) -> list[str]:
    """`name saved X, given Y` for each chosen option that differs from the saved run's."""
    out = []
    for section in ("model", "tokenizer", "train"):
        for name, value in getattr(chosen, section).items():
            if section == "train" and name in RESUMABLE_CHANGES:
                continue
            if name in saved[section] and saved[section][name] != value:
                out.append(f"{name} saved {_show(saved[section][name])}, given {_show(value)}")
    return out


def data_differences(saved: dict | None, now: dict) -> list[str]:
    """The corpus and validation sources that differ from those the run was saved with (none
    when the resume point does not record them)."""
    if not isinstance(saved, dict):
        return []
    return [f"{key} saved {describe_parts(saved.get(key))}, given {describe_parts(now[key])}"
            for key in ("corpus", "valid") if saved.get(key) != now[key]]


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
