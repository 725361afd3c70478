"""``ray-annotate`` / ``annotate_ray`` on a local Ray instance give the records of the local ``annotate``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest
import spacy
from typer.testing import CliRunner

from spacy_distilner.cli import app
from spacy_distilner.entity_record import DocRecord, EntityRecord, TokenRecord, record_fields

TEXTS = [
    "John Smith went to New York with Apple.",
    "Mary said the company in London was new.",
    "",
    "Paris !",
    "Zoë Müller flew from São Paulo to Kraków 🛫 with Ñandú Ltd.",
    "東京 and 北京 are cities ; Google said so .",
    "a line with a\u2028line separator and a \u00a0 no-break space",
    "   ",
    "The president of the United States said today .",
    "Germany 's company in Paris ( Apple ) .",
    "new york , london , paris",
    "x",
    "John " * 60,  # longer than the tiny model's 64-piece window
    "Mary and John Smith met at Google in London on Friday .",
    "Émile Zola : « J'accuse » !",
    "Jean-Luc Picard",
    "The people of the world",
    "",
    "Apple , Google and the city of New York",
    "end .",
]
BAD_LINE = b"\xff\xfe not UTF-8"  # skipped by both runs
# Ray's DataContext warns about its own deprecated fields when it is copied; the API used here is current
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[ModuleType]:
    """A local Ray instance with 2 CPUs, shut down after the module's tests.

    Skips when ray is not installed, except on CI (``CI=true``), where it fails.
    """
    try:
        import ray
    except ImportError as err:
        reason = f"ray is not installed ({err}): pip install -e '.[ray]'"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def pipeline_dir(iob_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved pipeline with distilner on the tiny random model."""
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    path = tmp_path_factory.mktemp("pipeline")
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def input_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = [t.encode("utf8") for t in TEXTS[:10]] + [BAD_LINE] + [t.encode("utf8") for t in TEXTS[10:]]
    path = tmp_path_factory.mktemp("input") / "texts.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="module")
def local_records(pipeline_dir: Path, input_file: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The records of the local ``annotate`` on the same input."""
    out = tmp_path_factory.mktemp("local") / "out.jsonl"
    result = CliRunner().invoke(app, ["annotate", str(input_file), str(out), "--pipeline", str(pipeline_dir)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_bytes().split(b"\n") if line]


def _json_dir(path: Path) -> list[dict]:
    return [json.loads(line) for file in sorted(path.glob("*.json")) for line in file.read_bytes().split(b"\n") if line]


def _confidences(records: list[dict]) -> list[float]:
    return [e["confidence"] for r in records for e in r["entities"]]


def _without_confidences(records: list[dict]) -> list[dict]:
    return [{**r, "entities": [{**e, "confidence": None} for e in r["entities"]]} for r in records]


def _assert_same(records: list[dict], expected: list[dict]) -> None:
    """The same records (fields in the same order), confidences within 1e-6, once sorted by input line."""
    records = sorted(records, key=lambda r: r["meta"]["line"])
    assert [list(r) for r in records] == [list(r) for r in expected]
    assert _without_confidences(records) == _without_confidences(expected)
    assert _confidences(records) == pytest.approx(_confidences(expected), abs=1e-6)


def test_arrow_types_are_the_record() -> None:
    """The rows' Arrow types follow ``entity_record``: its fields in order, and ``tokens`` with tag labels only."""
    pytest.importorskip("ray")
    import pyarrow as pa

    from spacy_distilner.distributed import _arrow_types

    assert list(_arrow_types(None)) == [n for n in record_fields(DocRecord) if n in DocRecord.__required_keys__]
    types = _arrow_types(["O", "B-PER"])
    assert list(types) == list(record_fields(DocRecord)) and types["meta"] is None
    entity, token = types["entities"].value_type, types["tokens"].value_type
    scalars = [pa.int64(), pa.int64(), pa.string(), pa.string(), pa.float64()]
    assert [(f.name, f.type) for f in entity] == list(zip(record_fields(EntityRecord), scalars))
    assert [f.name for f in token] == list(record_fields(TokenRecord))
    assert token.field("probs").type == pa.struct([("O", pa.float64()), ("B-PER", pa.float64())])


def test_local_run_finds_entities(local_records: list[dict]) -> None:
    assert len(local_records) == len(TEXTS)
    assert sum(len(r["entities"]) for r in local_records) > 5


def test_one_actor_json(
    ray_local: ModuleType, pipeline_dir: Path, input_file: Path, local_records: list[dict], tmp_path: Path
) -> None:
    from spacy_distilner.distributed import annotate_ray

    run = annotate_ray(str(input_file), str(tmp_path / "out"), pipeline=str(pipeline_dir), batch_size=4, num_actors=1)
    records = _json_dir(tmp_path / "out")
    _assert_same(records, local_records)
    assert run.docs == len(TEXTS) and run.entities == sum(len(r["entities"]) for r in local_records)
    assert len(run.skipped) == 1 and ":11: invalid UTF-8" in run.skipped[0]
    assert 0 < run.tagging_seconds <= run.seconds


def test_two_actors_cli_parquet(
    ray_local: ModuleType, pipeline_dir: Path, input_file: Path, local_records: list[dict], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    args = ["ray-annotate", str(input_file), str(tmp_path / "out"), "--pipeline", str(pipeline_dir)]
    result = CliRunner().invoke(app, [*args, "--actors", "2", "--batch-size", "3", "--output-format", "parquet"])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "out").glob("*.parquet"))
    assert len(files) > 1  # several blocks, written by several tasks
    _assert_same([row for file in files for row in pq.read_table(file).to_pylist()], local_records)
    summary = " ".join(result.stderr.split())
    n_ents = sum(len(r["entities"]) for r in local_records)
    assert f"{len(TEXTS)} docs, {n_ents} entities, 1 skipped in" in summary
    assert "docs/s" in summary and "words/s" in summary and "with 2 actor(s)" in summary


def test_parquet_input(ray_local: ModuleType, pipeline_dir: Path, local_records: list[dict], tmp_path: Path) -> None:
    """Parquet rows (a null text is skipped) give the records of the same texts and metas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spacy_distilner.distributed import annotate_ray

    texts = [r["text"] for r in local_records[:4]]
    metas = [r["meta"] for r in local_records[:4]]
    pq.write_table(
        pa.table({"text": texts[:2] + [None] + texts[2:], "meta": metas[:2] + [None] + metas[2:]}),
        tmp_path / "in.parquet",
    )
    run = annotate_ray(str(tmp_path / "in.parquet"), str(tmp_path / "out"), pipeline=str(pipeline_dir))
    _assert_same(_json_dir(tmp_path / "out"), local_records[:4])
    assert len(run.skipped) == 1 and run.skipped[0].endswith("in.parquet: row 2: no string 'text'")


def test_fail_on_bad_line(ray_local: ModuleType, pipeline_dir: Path, input_file: Path, tmp_path: Path) -> None:
    args = ["ray-annotate", str(input_file), str(tmp_path / "out"), "--pipeline", str(pipeline_dir)]
    result = CliRunner().invoke(app, [*args, "--on-error", "fail"])
    assert result.exit_code == 1
    assert "Bad input at" in result.stderr and ":11: invalid UTF-8" in result.stderr
