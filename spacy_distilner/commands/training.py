"""``distilner corpus | calibrate | checkpoints | ship | xling | runlog``: the tools around training a model."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..loading import KNOWN_MODELS
from . import CasingName, new_app

checkpoints = new_app(
    "Average weight checkpoints.\n\nThe checkpoints are saved during spacy train by the callback "
    "spacy_distilner.checkpoints.v1."
)
runlog = new_app("Record training runs' time and memory; tabulate the runs.")

ShippedName = Enum("ShippedName", {name: name for name in sorted(KNOWN_MODELS)}, type=str)  # type: ignore[misc]
PipelineArg = Annotated[
    Path, typer.Argument(help="Trained spaCy pipeline directory.", metavar="PIPELINE_DIR", show_default=False)
]


def corpus(
    input_path: Annotated[
        Path, typer.Argument(help="CoNLL-style, JSONL or DocBin NER file.", metavar="INPUT", show_default=False)
    ],
    output_path: Annotated[
        Path, typer.Argument(help="DocBin file to write (.spacy).", metavar="OUTPUT", show_default=False)
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--fmt",
            help="Input format: auto (.jsonl and .spacy by suffix, else CoNLL-style detected from the lines), "
            "conll2003, wnut17, wikiann, iob, jsonl or spacy.",
        ),
    ] = "auto",
    lang: Annotated[str, typer.Option("--lang", help="Language of the blank pipeline (vocab; JSONL tokenizer).")] = "en",
    sents_per_doc: Annotated[
        int, typer.Option("--sents-per-doc", min=1, help="Sentences per Doc for files without -DOCSTART- lines.")
    ] = 1,
) -> None:
    """Convert an NER corpus to a spaCy DocBin.

    CoNLL-2003, WNUT-17, WikiANN, generic IOB, JSONL with character-offset entities, or a DocBin; prints the
    detected format and counts of docs, sentences, tokens and entities per label.
    """
    from ..training.corpus import INPUT_FORMATS, convert, format_stats

    if fmt not in ("auto", *INPUT_FORMATS):
        raise typer.BadParameter(f"{fmt!r} is not one of auto, {', '.join(INPUT_FORMATS)}", param_hint="'--fmt'")
    try:
        stats = convert(input_path, output_path, fmt, lang, sents_per_doc)
    except (OSError, ValueError) as err:  # the reader's errors name the file and line
        raise typer.BadParameter(str(err), param_hint="'INPUT'") from err
    typer.echo(f"{input_path} -> {output_path}")
    typer.echo(format_stats(stats))


def calibrate(
    pipeline_dir: PipelineArg,
    dev_path: Annotated[Path, typer.Argument(help="Gold dev DocBin (.spacy).", metavar="DEV", show_default=False)],
    output_dir: Annotated[
        Path, typer.Argument(help="Where the calibrated pipeline is saved.", metavar="OUTPUT_DIR", show_default=False)
    ],
    metrics: Annotated[
        Path, typer.Option("--metrics", help="Directory for calibration.json and reliability.png.")
    ] = Path("metrics"),
    casing: Annotated[
        list[CasingName], typer.Option("--casing", help="Fit on the dev set in this casing too (repeat; default: as-given).")
    ] = [],
) -> None:
    """Fit the confidence temperature on a dev set.

    Picks the temperature that minimises the log-loss of "this predicted entity is exactly right", saves the
    pipeline with it, and reports the expected calibration error before and after, with a reliability diagram.
    """
    from ..training.calibrate import calibrate as fit_temperature

    casings = [c.value for c in casing] or ["as-given"]
    typer.echo(json.dumps(fit_temperature(pipeline_dir, dev_path, output_dir, metrics, casings), indent=2))


@checkpoints.command("average")
def average_checkpoints(
    pipeline: PipelineArg,
    out: Annotated[Path, typer.Argument(help="Directory for the averaged pipeline.", metavar="OUT", show_default=False)],
    paths: Annotated[
        list[Path],
        typer.Argument(help="Checkpoint files, or folders of them.", metavar="CHECKPOINTS", show_default=False),
    ],
    from_step: Annotated[int, typer.Option("--from-step", min=0, help="Only checkpoints of this step or later.")] = 0,
) -> None:
    """Average checkpoints into a copy of a trained pipeline.

    Loads the pipeline (e.g. model-last), replaces its weights with the element-wise mean of the checkpoints
    (safetensors) and saves it to OUT.
    """
    from ..training.checkpoints import average, select

    chosen = select(paths, from_step)
    if not chosen:
        raise typer.BadParameter(f"no checkpoints from step {from_step} on", param_hint="'CHECKPOINTS'")
    average(pipeline, out, chosen)
    typer.echo(f"Saved the average of {len(chosen)} checkpoints ({', '.join(p.name for p in chosen)}) to {out}")


def ship(
    pipeline_dir: PipelineArg,
    name: Annotated[ShippedName, typer.Option("--name", help="Shipped model name.")] = ShippedName["default"],
    card: Annotated[
        Optional[Path], typer.Option("--card", help="Model card copied to MODEL_CARD.md.", dir_okay=False)
    ] = None,
    external_embeddings: Annotated[
        Optional[str], typer.Option("--external-embeddings", help="Package that rebuilds the word embeddings.")
    ] = None,
    languages: Annotated[
        Optional[str],
        typer.Option(
            "--languages",
            help="Comma-separated language codes the model is for; '' for any language (default: its training data's).",
        ),
    ] = None,
) -> None:
    """Ship a trained pipeline's model inside the package.

    Writes its transformer as fp16 safetensors with the tokenizer and settings under a known model name.
    """
    from ..training.ship import ship as ship_model

    codes = None if languages is None else [x for x in languages.split(",") if x]
    typer.echo(ship_model(pipeline_dir, KNOWN_MODELS[name.value], card, external_embeddings, codes))


def xling(
    data_dir: Annotated[
        Path, typer.Argument(help="WikiANN directory with LANG/dev files.", metavar="DATA_DIR", show_default=False)
    ],
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated model names or paths; the first is compared with each other.")
    ] = "multilingual,default",
    langs: Annotated[
        Optional[str], typer.Option("--langs", help="Comma-separated languages (default: en, de, fr and nl).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="First N sentences per language (0: all).")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Directory for xling.json and xling.md.")] = Path("metrics/xling"),
) -> None:
    """Zero-shot cross-lingual F1 table on WikiANN dev.

    Entity F1 per language and model. WikiANN has PER, ORG and LOC only, so MISC predictions are dropped;
    its gold words are given.
    """
    from ..training.xling import LANGS, run, table

    rows = run(data_dir, models.split(","), LANGS if langs is None else langs.split(","), limit)
    out.mkdir(parents=True, exist_ok=True)
    (out / "xling.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "xling.md").write_text(table(rows))
    typer.echo(table(rows))


@runlog.command("run", context_settings={"allow_interspersed_args": False})
def runlog_run(
    out: Annotated[Path, typer.Argument(help="JSON file to write.", metavar="OUT.json", show_default=False)],
    command: Annotated[
        list[str], typer.Argument(help="The command to run, after --.", metavar="COMMAND", show_default=False)
    ],
) -> None:
    """Run a command and record its wall time and peak memory.

    Writes OUT.json with the wall seconds, the peak resident memory of the largest child process, the exit
    code and $SPACY_CONFIG_OVERRIDES, and exits with the command's code. A leading python is this interpreter.
    """
    from ..training.runlog import run

    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        raise typer.BadParameter("run needs a command after --", param_hint="'COMMAND'")
    raise typer.Exit(run(command, out))


@runlog.command("table")
def runlog_table(
    out_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of the NAME.run.json files; the tables go here.", metavar="OUT_DIR", show_default=False
        ),
    ],
    training_dir: Annotated[
        Path,
        typer.Argument(help="Folder of the NAME/model-best pipelines.", metavar="TRAINING_DIR", show_default=False),
    ],
    names: Annotated[list[str], typer.Argument(help="Run names.", metavar="NAME", show_default=False)],
) -> None:
    """Collect runs into table.md and table.json.

    Per run: the start model and method (config.cfg), the dev scores and trainable parameters (meta.json)
    of model-best, with the wall time and peak memory of NAME.run.json.
    """
    from ..training.runlog import markdown, table

    typer.echo(markdown(table(out_dir, training_dir, names)), nl=False)
