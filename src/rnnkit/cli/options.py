"""Command-line options generated from the config dataclasses, and how `--help` shows them.

A field `hidden_dim` becomes `--hidden-dim`; its help, choices and old spellings come from the
field's metadata (`rnnkit.config.setting`) and "(default: ...)" from the dataclass, so a
setting has one name and one description from the command line to config.json. Options are
left None when not given (`given` collects the ones that were), so a recipe's value or the
dataclass default applies; `keep_default=True` puts the dataclass default in the namespace.
A list of strings is a repeatable option (`--stop A --stop B`); a list of integers takes its
values after one flag (`--cutoffs 2000 10000`).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..config import TrainConfig, field_default, field_types
from .common import finite_float, whole_number

_NUMBER_TYPES = {int: whole_number, float: finite_float, int | None: whole_number}
_METAVARS = {int: "N", float: "X", int | None: "N"}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option shown once, under its main name (`--hidden-dim N`, `--tie-weights/--no-tie-weights`),
    its other spellings named at the end of its help: "(also --hidden)". A description or epilog
    of one paragraph is wrapped; one laid out in lines is kept as written."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        main = _main_flag(action)
        if isinstance(action, argparse.BooleanOptionalAction):
            return f"{main}/--no-{main[2:]}"
        if action.nargs == 0:
            return main
        return f"{main} {self._format_args(action, self._get_default_metavar_for_optional(action))}"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:  # laid out by hand (examples, tables): keep as written
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)

    def _expand_help(self, action: argparse.Action) -> str:
        text = super()._expand_help(action)
        others = [s for s in action.option_strings if s != _main_flag(action) and not s.startswith("--no-")]
        return f"{text} (also {', '.join(others)})" if others else text


class Toggle(argparse.BooleanOptionalAction):
    """--x / --no-x whose usage line shows that pair only, not every old spelling's pair too."""

    def format_usage(self) -> str:
        return " | ".join(self.option_strings[:2])


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that uses HelpFormatter unless told otherwise (every subcommand's parser)."""

    def __init__(self, *args: Any, formatter_class: type = HelpFormatter, **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def _main_flag(action: argparse.Action) -> str:
    return next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])


def flag(name: str) -> str:
    """The command-line spelling of a field: hidden_dim -> --hidden-dim."""
    return "--" + name.replace("_", "-")


def show_default(value: Any) -> str:
    """A default as --help prints it: on/off for booleans, none for an empty list."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def option_help(f: dataclasses.Field, shown: str | None = None) -> str:
    """The field's help with "(default: ...)" appended (`shown`, else the dataclass default;
    nothing for a default of None, whose help says what happens)."""
    default = field_default(f)
    text = f.metadata["help"]
    if shown is not None or default is not None:
        text += f" (default: {show_default(default) if shown is None else shown})"
    return text.replace("%", "%%")


def add_option(parser: Any, cls: type, f: dataclasses.Field, *, prefix: str = "", keep_default: bool = False,
               shown: str | None = None) -> argparse.Action:
    """One option for field `f` of config class `cls`, stored as `prefix + f.name`."""
    typ = field_types(cls)[f.name]
    kw: dict[str, Any] = {"dest": prefix + f.name, "help": option_help(f, shown),
                          "default": field_default(f) if keep_default else None}
    if typ is bool:
        kw["action"] = Toggle
    elif typ == list[str]:
        kw.update(action="append", metavar="TEXT")
    elif typ == list[int]:
        kw.update(nargs="+", type=whole_number, metavar="N")
    elif f.metadata["choices"]:
        kw["choices"] = f.metadata["choices"]
    else:
        kw.update(type=_NUMBER_TYPES.get(typ, str), metavar=_METAVARS.get(typ, f.name.split("_")[-1].upper()))
    return parser.add_argument(flag(f.name), *f.metadata["aliases"], **kw)


def add_options(parser: Any, cls: type, names: tuple[str, ...] | None = None, *, exclude: tuple[str, ...] = (),
                prefix: str = "", keep_default: bool = False, shown: dict[str, str] | None = None) -> None:
    """Options for the fields of `cls` (all, or `names`, minus `exclude`), in field order."""
    for f in dataclasses.fields(cls):
        if (names is None or f.name in names) and f.name not in exclude:
            add_option(parser, cls, f, prefix=prefix, keep_default=keep_default, shown=(shown or {}).get(f.name))


def add_engine_options(parser: Any) -> None:
    """--engine and --device, as TrainConfig defines them, for every command that runs a model."""
    add_options(parser, TrainConfig, ("engine", "device"), keep_default=True)


def given(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """{field: value} of the options of `cls` given on the command line (not None)."""
    values = {f.name: getattr(args, prefix + f.name, None) for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if v is not None}
