"""A command line built from a settings dataclass: one `--flag` per field, its help from the field's docstring.

A field's docstring is the string literal written on the line after it, as in:

    lr: float = 3e-7
    \"\"\"AdamW learning rate.\"\"\"

Unknown flags are an error (argparse's default), so a typo never silently runs the defaults.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import sys
import textwrap
import typing
from difflib import get_close_matches
from pathlib import Path
from typing import Callable

from . import distributed


def field_docs(cls: type) -> dict[str, str]:
    """Map each field of a dataclass to the docstring written under it, read from the source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, after in zip(body, body[1:]):
            is_doc = isinstance(after, ast.Expr) and isinstance(getattr(after, "value", None), ast.Constant)
            if isinstance(node, ast.AnnAssign) and is_doc and isinstance(after.value.value, str):
                docs[node.target.id] = after.value.value.strip()
    return docs


def arg_options(tp: object) -> dict:
    """argparse keyword arguments for a field's type: bool, Literal, Optional[...] and plain scalars."""
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return {"choices": list(args), "type": type(args[0])}
    if type(None) in args:  # X | None: the word "none" gives None
        inner = next(a for a in args if a is not type(None))
        return {"type": lambda s: None if s.lower() == "none" else inner(s), "metavar": inner.__name__.upper()}
    return {"type": tp}


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (exit code 2, as before) instead of the usage text and the error."""

    def error(self, message: str):
        self.exit(2, f"error: {message}{self.near_miss(message)} (--help lists the settings)\n")

    def near_miss(self, message: str) -> str:
        """For an unknown flag, the flags it may have meant: the same name under a stage's prefix (the pipeline's
        --sft-max-len for --max-len), else the closest spelling."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        options = [o for o in self._option_string_actions if o.startswith("--")]
        for word in message.partition(":")[2].split():
            name = word.split("=")[0]
            if name.startswith("--"):
                near = [o for o in options if o.endswith("-" + name[2:])] or get_close_matches(name, options, n=1)
                if near:
                    return f"; did you mean {' or '.join(near[:3])}?"
        return ""


def build_parser(cls: type, description: str | None = None, skip: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """An argparse parser with a `--kebab-case` flag for every field of the dataclass `cls` (but those in `skip`)."""
    parser = Parser(
        description=description or (cls.__doc__ or "").strip(), formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for f in (f for f in dataclasses.fields(cls) if f.name not in skip):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(
            flag,
            dest=f.name,
            default=f.default,
            help=docs.get(f.name, "").replace("%", "%%"),
            **arg_options(hints[f.name]),
        )  # argparse formats help with %: a docstring's "99th %" is text
    return parser


USER_ERRORS = (ValueError, OSError)  # a bad setting or input; OSError: files, folders and hub ids


def command(main: Callable[[list[str] | None], object]) -> Callable[[list[str] | None], object]:
    """A command's entry point: a bad setting or input ends in one line on stderr and exit code 2 (as argparse's
    own errors do), with no traceback. `--debug` anywhere on the command line shows the traceback instead."""

    @functools.wraps(main)
    def run(argv: list[str] | None = None):
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = "--debug" in argv
        argv = [a for a in argv if a != "--debug"]
        try:
            return main(argv)
        except USER_ERRORS as err:
            if debug:
                raise
            print(f"error: {err} (--debug shows the traceback)", file=sys.stderr)
            raise SystemExit(2) from None

    return run


def parse_config(cls: type, argv: list[str] | None = None, **overrides):
    """Parse the command line into a `cls` instance; `overrides` change defaults (for presets)."""
    parser = build_parser(cls)
    parser.set_defaults(**overrides)
    return cls(**vars(parser.parse_args(argv)))


@distributed.main_only
def save_config(config, path: str | Path) -> None:
    """Write the settings as JSON (beside every run, so a result can always be traced to its settings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n")


def load_config(cls: type, path: str | Path):
    """Read settings written by `save_config`. Unknown keys are an error, like unknown flags."""
    return cls(**json.loads(Path(path).read_text()))
