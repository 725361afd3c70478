"""Annotate on Ray: Ray Data reads the input, a pool of actors runs distilner, Ray Data writes the records.

Each actor loads the pipeline once and tags its batches with ``nlp.pipe``. Its rows are the records
of ``distilner annotate`` (``entity_record.DocRecord``: text, meta, entities, and tokens with
``token_scores``; the Arrow types are derived from the record's), written as JSON lines or Parquet,
several files to a directory, in no particular order. Text and JSONL
files go through the readers of ``annotate``, so the meta (``{"line": n}`` for text) and the handling
of bad lines are the same; the meta is what ties an output row to its input. The output meta is an
Arrow value, so JSONL metas should share one shape: the objects of a batch get the union of their keys
(missing ones null), and a batch that mixes objects with other values fails.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Optional, Sequence, Union, cast, get_args, get_origin

import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.data.datasource import FileBasedDatasource
from typing_extensions import is_typeddict

from .entity_record import DocRecord, doc_to_json, record_fields
from .records import InputError, InputFormat, Record, check_source, load_pipeline, pipe_records, read_stream

RayInputFormat = Literal["auto", "text", "jsonl", "parquet"]
OutputFormat = Literal["json", "parquet"]
OnError = Literal["skip", "fail"]
IO_CPUS = 0  # reading and writing reserve no CPU, so that an actor pool holding every CPU cannot starve them
ARROW_SCALARS = {int: pa.int64(), str: pa.string(), float: pa.float64()}


@dataclass(frozen=True)
class RayRun:
    """What a run did. ``seconds``: wall time from reading to the last file written, actor start-up included;
    ``tagging_seconds``: from the first batch an actor took to the last one it finished.
    """

    docs: int
    entities: int
    words: int
    skipped: tuple[str, ...]  # why each skipped input line was bad
    seconds: float
    tagging_seconds: float


@ray.remote(num_cpus=0)
class _Tally:
    """Counts and batch times sent by the read tasks and the actors, collected for the summary."""

    def __init__(self) -> None:
        self.counts = {"docs": 0, "entities": 0, "words": 0}
        self.skipped: list[str] = []
        self.span = (float("inf"), float("-inf"))

    def add(self, skipped: Sequence[str] = (), span: Optional[tuple[float, float]] = None, **counts: int) -> None:
        for key, n in counts.items():
            self.counts[key] += n
        self.skipped.extend(skipped)
        if span is not None:
            self.span = (min(self.span[0], span[0]), max(self.span[1], span[1]))

    def result(self) -> dict[str, Any]:
        tagging_seconds = max(self.span[1] - self.span[0], 0.0)
        return {**self.counts, "skipped": tuple(self.skipped), "tagging_seconds": tagging_seconds}


def _rows(items: Iterable[Union[Record, InputError]], on_error: OnError, tally: Any) -> pa.Table:
    """``text`` and ``meta`` (as JSON, whatever its shape) rows; a bad record stops the run or is tallied as skipped."""
    texts, metas, skipped = [], [], []
    for item in items:
        if not isinstance(item, InputError):
            texts.append(item[0])
            metas.append(json.dumps(item[1]))
        elif on_error == "fail":
            raise ValueError(f"Bad input at {item}")
        else:
            skipped.append(str(item))
    if skipped:
        ray.get(tally.add.remote(skipped=skipped))
    return pa.table({"text": pa.array(texts, pa.string()), "meta": pa.array(metas, pa.string())})


def _table_records(table: pa.Table, path: str, text_field: str, meta_field: str) -> Iterator[Union[Record, InputError]]:
    """Parquet rows: the ``text_field`` column and, if there is one, the ``meta_field`` column."""
    if text_field not in table.column_names:
        raise ValueError(f"No column '{text_field}' in {path} (columns: {', '.join(table.column_names)})")
    metas = table[meta_field].to_pylist() if meta_field in table.column_names else itertools.repeat(None)
    for n, (text, meta) in enumerate(zip(table[text_field].to_pylist(), metas)):
        yield (text, meta) if isinstance(text, str) else InputError(path, None, f"row {n}: no string '{text_field}'")


class _RecordFiles(FileBasedDatasource):
    """Text, JSONL or Parquet files, one ``text`` / ``meta`` row per record; text and JSONL by ``annotate``'s readers.

    Ray Data splits each file's blocks of rows, so that one file feeds several actors.
    """

    def __init__(
        self, paths: str, fmt: RayInputFormat, text_field: str, meta_field: str, on_error: OnError, tally: Any
    ) -> None:
        super().__init__(paths)
        self.fmt = fmt
        self.fields = {"text_field": text_field, "meta_field": meta_field}
        self.on_error = on_error
        self.tally = tally

    def _read_stream(self, f: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        data = f.readall()
        if self.fmt == "parquet" or (self.fmt == "auto" and path.endswith(".parquet")):
            records = _table_records(pq.read_table(pa.BufferReader(data)), path, **self.fields)
        else:
            records = read_stream(io.BytesIO(data), path, cast(InputFormat, self.fmt), **self.fields)
        yield _rows(records, self.on_error, self.tally)


def arrow_type(hint: Any, tag_labels: Sequence[str]) -> Optional[pa.DataType]:
    """The Arrow type of a record field's type: None (inferred) for ``Any`` (meta), a struct for a record,
    and for a dict (a token's probs) a struct of ``tag_labels``."""
    if hint is Any:
        return None
    if is_typeddict(hint):
        return pa.struct([(name, arrow_type(sub, tag_labels)) for name, sub in record_fields(hint).items()])
    origin, args = get_origin(hint), get_args(hint)
    if origin is list:
        return pa.list_(arrow_type(args[0], tag_labels))
    if origin is dict:
        return pa.struct([(label, arrow_type(args[1], tag_labels)) for label in tag_labels])
    if origin is Union:  # Optional[X]: Arrow values are nullable
        (inner,) = [arg for arg in args if arg is not type(None)]
        return arrow_type(inner, tag_labels)
    return ARROW_SCALARS[hint]


def _arrow_types(tag_labels: Optional[Sequence[str]]) -> dict[str, Optional[pa.DataType]]:
    """Arrow types of the ``DocRecord`` fields (``tokens`` with ``tag_labels`` only), so that a batch
    without entities still agrees."""
    fields = record_fields(DocRecord).items()
    wanted = [(name, hint) for name, hint in fields if tag_labels is not None or name in DocRecord.__required_keys__]
    return {name: arrow_type(hint, tag_labels or ()) for name, hint in wanted}


class _Annotator:
    """An actor of the pool: loads the pipeline once, then tags each batch of ``text`` / ``meta`` rows."""

    def __init__(self, load: dict[str, Any], threads: int, token_scores: bool, tally: Any) -> None:
        import torch

        torch.set_num_threads(threads)
        self.nlp, pipe = load_pipeline(**load, num_threads=threads, store_probs=token_scores)
        self.tag_labels = pipe.tag_labels if token_scores else None
        self.types = _arrow_types(self.tag_labels)
        self.tally = tally

    def __call__(self, batch: pa.Table) -> pa.Table:
        began = time.time()  # wall clock, comparable across processes
        records = zip(batch["text"].to_pylist(), map(json.loads, batch["meta"].to_pylist()))
        docs = list(pipe_records(self.nlp, records, batch_size=max(batch.num_rows, 1)))
        counts = {"docs": len(docs), "entities": sum(len(d.ents) for d in docs), "words": sum(len(d) for d in docs)}
        ray.get(self.tally.add.remote(span=(began, time.time()), **counts))
        rows = [doc_to_json(doc, self.tag_labels) for doc in docs]
        return pa.table({key: pa.array([row[key] for row in rows], typ) for key, typ in self.types.items()})


def _absolute(path: str) -> str:
    """A local path made absolute, as Ray workers need not share the driver's directory; URIs are unchanged."""
    return path if "://" in path else str(Path(path).resolve())


def annotate_ray(
    input_path: str,
    output_dir: str,
    *,
    model: Optional[str] = None,
    pipeline: Optional[str] = None,
    lang: str = "en",
    input_format: RayInputFormat = "auto",
    text_field: str = "text",
    meta_field: str = "meta",
    output_format: OutputFormat = "json",
    batch_size: int = 64,
    num_actors: int = 1,
    cpus_per_actor: float = 1.0,
    on_error: OnError = "skip",
    token_scores: bool = False,
    ray_address: Optional[str] = None,
    **settings: Any,
) -> RayRun:
    """Tag ``input_path`` with ``num_actors`` actors and write the records to the new directory ``output_dir``.

    ``input_path``: a file or directory of text (one doc per line), JSONL or Parquet (``text_field`` and
    ``meta_field`` columns); ``auto`` takes ``.parquet`` as Parquet and reads other files like ``annotate``.
    ``model``/``pipeline``/``lang`` and ``settings`` (backend, precision, threshold, …) as in ``load_pipeline``;
    model and pipeline directories must exist on every node. Each actor reserves ``cpus_per_actor`` CPUs
    and runs that many torch (or ONNX Runtime) threads, on ``batch_size`` docs per batch. Ray is started
    with ``ray.init(address=ray_address)`` unless it is running already: a local instance when there is
    no address and no ``RAY_ADDRESS``.
    """
    check_source(model, pipeline)
    if not ray.is_initialized():
        ray.init(address=ray_address)
    tally = _Tally.remote()  # type: ignore[attr-defined]
    start = time.perf_counter()
    files = _RecordFiles(_absolute(input_path), input_format, text_field, meta_field, on_error, tally)
    ds = ray.data.read_datasource(files, num_cpus=IO_CPUS)
    load = {
        "model": _absolute(model) if model is not None and Path(model).is_dir() else model,
        "pipeline": None if pipeline is None else _absolute(pipeline),
        "lang": lang,
        **settings,
    }
    threads = max(1, int(cpus_per_actor))
    ds = ds.map_batches(
        _Annotator,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=cpus_per_actor,
        fn_constructor_kwargs={"load": load, "threads": threads, "token_scores": token_scores, "tally": tally},
    )
    # a new directory: files of an earlier run would mix with these
    write = {"path": _absolute(output_dir), "mode": ray.data.SaveMode.ERROR, "ray_remote_args": {"num_cpus": IO_CPUS}}
    if output_format == "parquet":
        ds.write_parquet(**write)
    else:
        ds.write_json(**write, force_ascii=False, double_precision=15)
    seconds = time.perf_counter() - start
    return RayRun(**ray.get(tally.result.remote()), seconds=seconds)
