"""The ``distilner`` subcommands that do not run a pipeline over texts: model export and conversion,
corpus conversion, calibration, checkpoint averaging, shipping, the cross-lingual table, the benchmark
and the run log. ``cli`` registers them beside annotate, render, serve and the other pipeline commands.

Each module imports what its commands need (spaCy, torch, onnxruntime) when they run, not when the
command line starts.
"""

from __future__ import annotations

from enum import Enum

import typer

from ..casing import CASINGS

CasingName = Enum("CasingName", {name: name for name in CASINGS}, type=str)  # type: ignore[misc]


def new_app(help: str) -> typer.Typer:
    """A command group: plain click help (typer's rich help prints ``<bool>`` after every flag), no
    shell-completion options, its help when called without a subcommand."""
    return typer.Typer(help=help, add_completion=False, no_args_is_help=True, rich_markup_mode=None)
