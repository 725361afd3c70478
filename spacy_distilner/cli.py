"""The ``distilner`` command line (also ``python -m spacy_distilner``): the commands that run a pipeline
(annotate, ray-annotate, render, serve, info, evaluate, compare) are here; the model, corpus and training
tools (export-onnx, convert, corpus, calibrate, checkpoints, ship, xling, bench, runlog) live in ``commands``.

Messages, warnings and the summary go to stderr, so ``-`` can stream JSONL to stdout.
"""

from __future__ import annotations

import itertools
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterable, Iterator, NoReturn, Optional, Union, get_args

import typer
from tqdm import tqdm
from wasabi import Printer

from .casing import CapsView
from .commands import CasingName, bench, convert, export, training, new_app
from .settings import PRECISIONS

if TYPE_CHECKING:  # spaCy (and with it torch) is imported by the commands that run a pipeline, not by --help
    from spacy.language import Language
    from spacy.tokens import Doc

    from .component import DistilNER
    from .records import InputError, Record

HELP = "Tag entities with distilner; build, train, export and benchmark its models."
app = new_app(HELP)
msg = Printer(no_print=True)  # formats; ``_say`` prints to stderr


def _terminated(signum: int, frame: Any) -> NoReturn:
    """SIGTERM unwinds like Ctrl-C: temporary files are removed, an old output is kept; exit code 143."""
    raise SystemExit(128 + signum)


@app.callback()
def _on_sigterm(ctx: typer.Context) -> None:
    # kill, systemd, Kubernetes and timeout stop a process with SIGTERM, whose default ends it at once;
    # the handler before is back when the command is done (a caller's own, e.g. pytest's)
    if threading.current_thread() is threading.main_thread():
        before = signal.signal(signal.SIGTERM, _terminated)
        ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before))


class OnError(str, Enum):
    skip = "skip"
    fail = "fail"


class Format(str, Enum):
    auto = "auto"
    text = "text"
    jsonl = "jsonl"


class RayFormat(str, Enum):
    auto = "auto"
    text = "text"
    jsonl = "jsonl"
    parquet = "parquet"


class OutputFormat(str, Enum):
    json = "json"
    parquet = "parquet"


# the component's choices; which precision each backend supports is checked when it is built
CapsViewName = Enum("CapsViewName", {name: name for name in get_args(CapsView)}, type=str)  # type: ignore[misc]
BackendName = Enum("BackendName", {name: name for name in PRECISIONS}, type=str)  # type: ignore[misc]
Precision = Enum(  # type: ignore[misc]
    "Precision", {p: p for options in PRECISIONS.values() for p in options}, type=str
)


InputArg = Annotated[
    str,
    typer.Argument(
        help="Text file (one doc per line), JSONL ({\"text\": ..., \"meta\": ...} per line), "
        "directory of .txt files (one doc per file), or - for stdin.",
        metavar="INPUT",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Shipped model name or model directory (default: 'default').")
]
PipelineOpt = Annotated[
    Optional[Path], typer.Option("--pipeline", "-p", help="Saved spaCy pipeline directory with a distilner component.")
]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of the blank pipeline used with --model.")]
BackendOpt = Annotated[Optional[BackendName], typer.Option("--backend", help="Inference backend.")]
PrecisionOpt = Annotated[
    Optional[Precision], typer.Option("--precision", help="torch: fp32 or bf16; onnx: fp32, int8 or fp16.")
]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", "-d", help="auto, cpu, cuda[:N] or mps.")]
ThresholdOpt = Annotated[
    Optional[float], typer.Option("--threshold", min=0.0, max=1.0, help="Drop entities with lower confidence.")
]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Docs per nlp.pipe batch.")]
OnErrorOpt = Annotated[
    OnError, typer.Option("--on-error", help="On a bad input line: report it and skip it, or stop with exit code 1.")
]
FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="Input format; auto: by suffix, else JSONL if line 1 starts with '{'.")
]
TextFieldOpt = Annotated[str, typer.Option("--text-field", help="JSONL field holding the text.")]
GoldFmtOpt = Annotated[str, typer.Option("--fmt", help="Input format (auto, conll2003, wnut17, wikiann, iob, jsonl, spacy).")]
MetaFieldOpt = Annotated[str, typer.Option("--meta-field", help="JSONL field copied to the output's meta.")]


def _say(line: str) -> None:
    """Print a message on stderr without breaking a progress bar."""
    with tqdm.external_write_mode(file=sys.stderr):
        typer.echo(line, err=True)


def _fail(text: str) -> NoReturn:
    """Report an error on stderr and exit with code 1."""
    _say(msg.fail(text))
    raise typer.Exit(1)


@dataclass
class _Stats:
    """Counts for the progress bar and the summary line."""

    docs: int = 0
    entities: int = 0
    words: int = 0
    skipped: int = 0
    start: float = field(default_factory=time.perf_counter)
    elapsed: Optional[float] = None  # wall seconds of a finished run; else the time since ``start``

    def seconds(self) -> float:
        return max(time.perf_counter() - self.start if self.elapsed is None else self.elapsed, 1e-9)

    def words_per_s(self) -> float:
        return self.words / self.seconds()

    def summary(self) -> str:
        return (
            f"{self.docs} docs, {self.entities} entities, {self.skipped} skipped in {self.seconds():.1f} s: "
            f"{self.docs / self.seconds():,.1f} docs/s, {self.words_per_s():,.0f} words/s"
        )


def _check_paths(input_path: str, output_path: str) -> None:
    """Fail before the model loads on a missing input, or an output that cannot be written or
    would destroy the input (``-`` is stdin / stdout)."""
    from .records import check_output

    if input_path != "-" and not Path(input_path).exists():
        _fail(f"Input not found: {input_path}")
    try:
        check_output(output_path, [input_path])
    except ValueError as err:
        _fail(str(err))


def _load(model: Optional[str], pipeline: Optional[Path], lang: str, **settings: Any) -> tuple[Language, DistilNER]:
    """``load_pipeline`` with the CLI's enum values; a bad model or pipeline exits with code 1."""
    from .records import load_pipeline

    try:
        return load_pipeline(model, pipeline, lang, **_plain(settings))
    except (OSError, ValueError) as err:
        _fail(str(err))


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    """Option values with the enums replaced by their strings."""
    return {key: val.value if isinstance(val, Enum) else val for key, val in settings.items()}


def _records(
    items: Iterable[Union[Record, InputError]], on_error: OnError, stats: _Stats, max_chars: int
) -> Iterator[Record]:
    """Valid records; bad ones (and texts over ``max_chars``, spaCy's ``nlp.max_length``) are reported
    on stderr and skipped, or stop the run with exit code 1. The other records are all processed."""
    from .records import InputError

    for n, item in enumerate(items, 1):
        if not isinstance(item, InputError) and len(item[0]) > max_chars:
            item = InputError(f"record {n}", None, f"text of {len(item[0]):,} characters is over nlp.max_length ({max_chars:,})")
        if not isinstance(item, InputError):
            yield item
        elif on_error is OnError.fail:
            _fail(f"Bad input at {item}")
        else:
            stats.skipped += 1
            _say(msg.warn(f"Skipped {item}"))


def _tracked(docs: Iterable[Doc], stats: _Stats) -> Iterator[Doc]:
    """Count docs, entities and words; a progress bar on stderr when it is a terminal."""
    with tqdm(unit="doc", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        for doc in docs:
            stats.docs += 1
            stats.entities += len(doc.ents)
            stats.words += len(doc)
            bar.update(1)
            bar.set_postfix_str(f"{stats.words_per_s():,.0f} words/s", refresh=False)
            yield doc


@app.command()
def annotate(
    input_path: InputArg,
    output_path: Annotated[
        str,
        typer.Argument(
            help="JSONL file, a spaCy DocBin if it ends with .spacy, or - for stdout.",
            metavar="OUTPUT",
            show_default=False,
        ),
    ],
    model: ModelOpt = None,
    pipeline: PipelineOpt = None,
    lang: LangOpt = "en",
    backend: BackendOpt = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
    threshold: ThresholdOpt = None,
    batch_size: BatchSizeOpt = 64,
    n_process: Annotated[int, typer.Option("--n-process", "-n", min=1, help="Worker processes.")] = 1,
    on_error: OnErrorOpt = OnError.skip,
    fmt: FormatOpt = Format.auto,
    text_field: TextFieldOpt = "text",
    meta_field: MetaFieldOpt = "meta",
    token_scores: Annotated[bool, typer.Option("--token-scores", help="Add per-token tag probabilities.")] = False,
) -> None:
    """Tag entities in texts; write JSONL or a DocBin.

    Each record holds the text, its meta and the entities with their confidence.
    """
    from .records import pipe_records, read_records, write_docs

    _check_paths(input_path, output_path)
    runtime = {"backend": backend, "precision": precision, "device": device, "threshold": threshold}
    nlp, pipe = _load(model, pipeline, lang, **runtime, store_probs=token_scores)
    stats = _Stats()
    records = _records(read_records(input_path, fmt.value, text_field, meta_field), on_error, stats, nlp.max_length)
    docs = _tracked(pipe_records(nlp, records, batch_size=batch_size, n_process=n_process), stats)
    write_docs(docs, output_path, pipe.tag_labels if token_scores else None)
    _say(msg.good(f"Annotated {stats.summary()}"))


@app.command("ray-annotate")
def ray_annotate(
    input_path: Annotated[
        str,
        typer.Argument(
            help="Text (one doc per line), JSONL or Parquet: a file or a directory, local or any URI Ray Data reads "
            "(s3://, gs://, ...).",
            metavar="INPUT",
            show_default=False,
        ),
    ],
    output_dir: Annotated[
        str,
        typer.Argument(
            help="New directory for the JSON-lines (or Parquet) files.", metavar="OUTPUT_DIR", show_default=False
        ),
    ],
    model: ModelOpt = None,
    pipeline: PipelineOpt = None,
    lang: LangOpt = "en",
    backend: BackendOpt = None,
    precision: PrecisionOpt = None,
    threshold: ThresholdOpt = None,
    batch_size: BatchSizeOpt = 64,
    actors: Annotated[int, typer.Option("--actors", "-a", min=1, help="Actors, each with its own pipeline.")] = 1,
    cpus_per_actor: Annotated[
        float, typer.Option("--cpus-per-actor", min=0.0, help="CPUs reserved per actor; its threads (at least 1).")
    ] = 1.0,
    address: Annotated[
        Optional[str],
        typer.Option("--address", help="Ray cluster, e.g. ray://host:10001 (default: $RAY_ADDRESS, else a local one)."),
    ] = None,
    on_error: OnErrorOpt = OnError.skip,
    fmt: Annotated[
        RayFormat, typer.Option("--format", "-f", help="Input format; auto: .parquet is Parquet, else as annotate.")
    ] = RayFormat.auto,
    text_field: TextFieldOpt = "text",
    meta_field: MetaFieldOpt = "meta",
    output_format: Annotated[
        OutputFormat, typer.Option("--output-format", help="JSON lines (annotate's records) or Parquet.")
    ] = OutputFormat.json,
    token_scores: Annotated[bool, typer.Option("--token-scores", help="Add per-token tag probabilities.")] = False,
) -> None:
    """Tag entities with a pool of Ray actors.

    Writes annotate's records (text, meta, entities) as several JSON-lines or Parquet files.
    """
    try:
        from .distributed import annotate_ray
    except ImportError as err:
        _fail(f"ray-annotate needs the 'ray' extra ({err}): pip install 'spacy-distilner[ray]'")
    if "://" not in input_path and not Path(input_path).exists():
        _fail(f"Input not found: {input_path}")
    if "://" not in output_dir and Path(output_dir).exists():
        _fail(f"Output directory exists already: {output_dir} (Ray writes several files to a new one)")
    runtime = _plain({"backend": backend, "precision": precision, "threshold": threshold})
    try:
        run = annotate_ray(
            input_path,
            output_dir,
            model=model,
            pipeline=None if pipeline is None else str(pipeline),
            lang=lang,
            input_format=fmt.value,
            text_field=text_field,
            meta_field=meta_field,
            output_format=output_format.value,
            batch_size=batch_size,
            num_actors=actors,
            cpus_per_actor=cpus_per_actor,
            on_error=on_error.value,
            token_scores=token_scores,
            ray_address=address,
            **runtime,
        )
    except Exception as err:  # Ray re-raises what its tasks raised as ``cause``, what its actors raised in a traceback
        _fail(f"ray-annotate failed: {getattr(err, 'cause', None) or err}")
    for reason in run.skipped:
        _say(msg.warn(f"Skipped {reason}"))
    stats = _Stats(run.docs, run.entities, run.words, len(run.skipped), elapsed=run.seconds)
    tagging = run.words / max(run.tagging_seconds, 1e-9)
    _say(msg.good(f"Annotated {stats.summary()} with {actors} actor(s) into {output_dir}"))
    _say(f"Tagging alone (first batch taken to last batch done): {run.tagging_seconds:.1f} s, {tagging:,.0f} words/s")


@app.command()
def render(
    input_path: InputArg,
    output_path: Annotated[
        Path, typer.Argument(help="HTML file to write.", metavar="OUTPUT", show_default=False, dir_okay=False)
    ],
    model: ModelOpt = None,
    pipeline: PipelineOpt = None,
    lang: LangOpt = "en",
    device: DeviceOpt = None,
    threshold: ThresholdOpt = None,
    low: Annotated[float, typer.Option("--low", min=0.0, max=1.0, help="Mark entities below this confidence.")] = 0.5,
    limit: Annotated[
        Optional[int], typer.Option("--limit", min=1, help="Render at most N docs (default: all).")
    ] = None,
    batch_size: BatchSizeOpt = 64,
    on_error: OnErrorOpt = OnError.skip,
    fmt: FormatOpt = Format.auto,
    text_field: TextFieldOpt = "text",
) -> None:
    """Render tagged entities as a displaCy HTML page.

    Each entity's label shows its confidence; entities below --low are marked.
    """
    from .records import atomic_output, pipe_records, read_records, render_html

    _check_paths(input_path, str(output_path))
    nlp, _ = _load(model, pipeline, lang, device=device, threshold=threshold, store_probs=False)
    stats = _Stats()
    records = _records(read_records(input_path, fmt.value, text_field), on_error, stats, nlp.max_length)
    html = render_html(_tracked(pipe_records(nlp, itertools.islice(records, limit), batch_size=batch_size), stats), low)
    with atomic_output(output_path) as tmp:
        tmp.write_text(html, encoding="utf8")
    _say(msg.good(f"Rendered {stats.summary()} to {output_path}"))


@app.command()
def serve(
    model: ModelOpt = None,
    pipeline: PipelineOpt = None,
    lang: LangOpt = "en",
    backend: BackendOpt = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Texts per nlp.pipe call.")] = 32,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0.0, help="How long a batch waits for more requests.")
    ] = 5.0,
    max_queue: Annotated[int, typer.Option("--max-queue", min=1, help="Requests that may wait; more get 503.")] = 256,
    max_chars: Annotated[int, typer.Option("--max-chars", min=1, help="Characters per text; more get 413.")] = 100_000,
    max_texts: Annotated[int, typer.Option("--max-texts", min=1, help="Texts per request; more get 413.")] = 128,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Request body size; larger get 413 before parsing.")
    ] = 4 * 1024 * 1024,
) -> None:
    """Serve entity tagging over HTTP.

    POST /ner, GET /health, GET /info, docs at /docs; requests are micro-batched.
    """
    try:
        import uvicorn

        from .serve import Limits, create_app
    except ImportError as err:
        _fail(f"serve needs the 'serve' extra ({err}): pip install 'spacy-distilner[serve]'")
    nlp, _ = _load(model, pipeline, lang, backend=backend, precision=precision, device=device, store_probs=True)
    limits = Limits(max_batch, max_wait_ms, max_queue, max_chars, max_texts, max_body_bytes)
    uvicorn.run(create_app(nlp, limits, pipeline), host=host, port=port)


@app.command()
def info(
    model: ModelOpt = None,
    pipeline: PipelineOpt = None,
    lang: LangOpt = "en",
    backend: BackendOpt = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The model, its labels, and how it runs here.

    Prints the backend, the precision (auto resolved), the device and the CPU's kernels.
    """
    import json

    from . import __version__

    _, pipe = _load(model, pipeline, lang, backend=backend, precision=precision, device=device)
    report = {
        "model": pipe.model_name if pipeline is None else str(pipeline),
        "labels": list(pipe.labels),
        "tags": list(pipe.tag_labels),
        "window": {"max_length": pipe.max_length, "stride": pipe.stride},
        "temperature": pipe.temperature,
        **pipe.backend_info,
        "version": __version__,
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    cpu = report.pop("cpu")
    for key, value in report.items():
        typer.echo(f"{key:<22}{', '.join(value) if isinstance(value, list) else value}")
    typer.echo(f"{'cpu':<22}{cpu['model']}")
    typer.echo(f"{'cpu flags':<22}{' '.join(cpu['flags']) or '-'}")
    typer.echo(f"{'native bf16':<22}{cpu['native_bf16']}")
    typer.echo(f"{'int8 kernels':<22}{'u8s8 (VNNI/AMX)' if cpu['int8_family'] == 'vnni' else 'u8u8 (AVX2)'}")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Argument(help="Gold data: a .spacy DocBin, a .jsonl file with character-offset entities or a CoNLL/WNUT/WikiANN/IOB file.")],
    model: ModelOpt = None,
    pipeline: PipelineOpt = None,
    lang: LangOpt = "en",
    fmt: GoldFmtOpt = "auto",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the scores as JSON here.")] = None,
    batch_size: BatchSizeOpt = 32,
    gold_tokens: Annotated[bool, typer.Option("--gold-tokens", help="Give the gold words instead of tokenizing the text.")] = False,
    ignore_label: Annotated[list[str], typer.Option("--ignore-label", help="Drop predictions of this label before scoring (repeat).")] = [],
    backend: BackendOpt = None,
    precision: PrecisionOpt = None,
    decoding: Annotated[Optional[str], typer.Option("--decoding", help="viterbi or greedy (default: the pipeline's).")] = None,
    per_sentence: Annotated[bool, typer.Option("--per-sentence", help="Tag every gold sentence on its own, without its document.")] = False,
    casing: Annotated[CasingName, typer.Option("--casing", help="Recase the gold text first (labels and offsets unchanged).")] = CasingName["as-given"],
    caps_view: Annotated[Optional[CapsViewName], typer.Option("--caps-view", help="How the model reads runs of ALL-CAPS words (default: the pipeline's).")] = None,
) -> None:
    """Score a model on gold data.

    P/R/F per entity type and a token confusion table, also over the data's ALL-CAPS sentences.
    """
    from .training.evaluate import evaluate as run_evaluation, read_gold, write

    nlp, _ = _load(model, pipeline, lang, backend=backend, precision=precision, decoding=decoding, caps_view=caps_view)
    golds = read_gold(data, nlp, fmt)
    write(run_evaluation(nlp, golds, batch_size, gold_tokens, ignore_label, per_sentence, casing.value), output)


@app.command()
def compare(
    data: Annotated[Path, typer.Argument(help="Texts: gold data in any format `evaluate` reads (its raw texts are used).")],
    model: ModelOpt = None,
    pipeline: PipelineOpt = None,
    lang: LangOpt = "en",
    fmt: GoldFmtOpt = "auto",
    backend: BackendOpt = None,
    precision: PrecisionOpt = None,
    other_backend: Annotated[Optional[BackendName], typer.Option("--other-backend", help="The backend to compare with.")] = None,
    other_precision: Annotated[Optional[Precision], typer.Option("--other-precision", help="Its precision.")] = None,
    per_sentence: Annotated[bool, typer.Option("--per-sentence", help="Compare on every gold sentence on its own.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the result as JSON here.")] = None,
    batch_size: BatchSizeOpt = 32,
) -> None:
    """Compare two backends or precisions of one model.

    Prints the share of identical entities and the largest probability and confidence differences.
    """
    from .training.evaluate import agreement, read_gold
    from .training.units import sentence_docs

    nlp, pipe = _load(model, pipeline, lang, backend=backend, precision=precision)
    other, other_pipe = _load(model, pipeline, lang, backend=other_backend, precision=other_precision)
    golds = read_gold(data, nlp, fmt)
    texts = [s.text for g in golds for s in sentence_docs(g)] if per_sentence else [g.text for g in golds]
    result = {
        "a": pipe.backend_info, "b": other_pipe.backend_info,
        **agreement(nlp, other, texts, batch_size),
    }
    typer.echo(json.dumps({k: v for k, v in result.items() if k not in ("a", "b")}, indent=2))
    if output is not None:
        output.write_text(json.dumps(result, indent=2) + "\n")


app.command("export-onnx")(export.export_onnx)
app.add_typer(convert.app, name="convert")
app.command()(training.corpus)
app.command()(training.calibrate)
app.add_typer(training.checkpoints, name="checkpoints")
app.command()(training.ship)
app.command()(training.xling)
app.command()(bench.bench)
app.add_typer(training.runlog, name="runlog")
