"""``distilner bench``: words/s, peak memory and F1 of the backends against the Hugging Face pipeline."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import bench as benchmark

StreamVariant = Enum(  # type: ignore[misc]
    "StreamVariant", {name: name for name in benchmark.VARIANTS if name != "hf_pipeline"}, type=str
)


def bench(
    model: Annotated[str, typer.Option("--model", "-m", help="Shipped model name or model directory.")] = "default",
    data: Annotated[Path, typer.Option("--data", help="CoNLL-2003-style file; its documents are tagged.")] = Path(
        "../shared/data/conll2003/valid.txt"
    ),
    out: Annotated[Path, typer.Option("--out", help="Directory for bench.json and bench.png.")] = Path("metrics/bench"),
    threads: Annotated[int, typer.Option("--threads", min=1, help="Threads of every variant.")] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Docs per nlp.pipe batch.")] = 16,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Only the first N documents (0: all).")] = 0,
    variants: Annotated[
        str,
        typer.Option(
            "--variants",
            help="Comma-separated variants (default: all); NAME:MAX_LENGTH:OVERLAP sets another inference window.",
            show_default=False,
        ),
    ] = ",".join(benchmark.VARIANTS),
    stream: Annotated[
        int, typer.Option("--stream", min=0, help="Texts for the memory runs (0: skip them).")
    ] = 20_000,
    stream_variant: Annotated[
        list[StreamVariant], typer.Option("--stream-variant", help="Variant of a memory run (repeat for several).")
    ] = [StreamVariant["torch_bf16"], StreamVariant["torch_fp32"]],
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="Time every variant this many times, round-robin; median words/s.")
    ] = 1,
    one: Annotated[Optional[str], typer.Option("--one", hidden=True, help="Run this variant here, print JSON.")] = None,
    one_stream: Annotated[bool, typer.Option("--one-stream", hidden=True, help="With --one: the memory run.")] = False,
    hf_batch_sizes: Annotated[
        str, typer.Option("--hf-batch-sizes", hidden=True, help="Batch sizes tried for the baseline.")
    ] = ",".join(map(str, benchmark.HF_BATCH_SIZES)),
) -> None:
    """Benchmark the backends against the Hugging Face pipeline.

    Words/s, peak memory and F1 of each variant on whole documents, each variant in its own subprocess
    with the same weights and threads; then streaming runs that sample the resident memory. Writes
    OUT/bench.json and OUT/bench.png.
    """
    if one is not None:  # a subprocess of the run below
        if one_stream:
            result = benchmark.run_stream(one, model, data, threads, batch_size, stream)
        else:
            sizes = tuple(int(x) for x in hf_batch_sizes.split(","))
            result = benchmark.run_variant(one, model, data, threads, batch_size, limit, sizes)
        typer.echo(json.dumps(result))
        return
    names = variants.split(",")
    for name in names:
        try:
            benchmark.variant_config(name)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="'--variants'") from err
    streams = [v.value for v in stream_variant]
    benchmark.run(model, data, out, threads, batch_size, limit, names, stream, streams, rounds)
