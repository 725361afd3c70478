"""The benchmark runs end to end on a tiny model: JSON with every variant, the stream run, a plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CONLL = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
Smith NNP I-NP I-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O

Apple NNP B-NP B-ORG
said VBD B-VP O
today NN B-NP O
. . O O

-DOCSTART- -X- -X- O

Mary NNP B-NP B-PER
was VBD B-VP O
in IN B-PP O
London NNP B-NP B-LOC
. . O O
"""


def test_bench_writes_json_and_plot(iob_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "valid.txt"
    data.write_text(CONLL, encoding="utf8")
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "spacy_distilner", "bench", "--model", str(iob_dir), "--data", str(data),
           "--out", str(out), "--threads", "1", "--variants", "hf_pipeline,torch_fp32,torch_fp32:16:4",
           "--stream", "40", "--stream-variant", "torch_fp32", "--rounds", "2"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    results = json.loads((out / "bench.json").read_text())
    by_name = {(r["variant"], "rss_samples" in r): r for r in results}
    assert not [r for r in results if "error" in r], results
    hf = by_name[("hf_pipeline", False)]
    assert hf["speedup_vs_hf"] == 1.0 and hf["batch_size"] in (1, 8, 32)
    assert len(hf["words_per_s_runs"]) == 2  # two rounds; the median of their times is reported
    fp32 = by_name[("torch_fp32", False)]
    assert fp32["words"] == 14 and 0.0 <= fp32["f1"] <= 1.0
    assert 0 <= fp32["padding"]["padded_tokens"] < 4 * fp32["padding"]["windows"]  # rows of <= 64 pad to a multiple of 4
    assert 0.0 < fp32["padding"]["forward_seconds"] < fp32["seconds"] and fp32["overhead_vs_forward"] > 0
    short = by_name[("torch_fp32:16:4", False)]  # 16-piece windows: more windows over the same words
    assert short["max_length"] == 16 and short["padding"]["windows"] > fp32["padding"]["windows"]
    stream = by_name[("torch_fp32", True)]
    assert stream["docs"] == 40 and [x["docs"] for x in stream["rss_samples"]] == list(range(4, 41, 4))
    assert stream["rss_growth_after_first_mb"] >= 0
    assert (out / "bench.png").stat().st_size > 0


def test_variant_config() -> None:
    from spacy_distilner.bench import variant_config

    assert variant_config("onnx_int8") == {"backend": "onnx", "precision": "int8"}
    assert variant_config("torch_fp32:512:64") == {"backend": "torch", "precision": "fp32", "max_length": 512, "stride": 64}
    for bad in ("tensorrt", "torch_fp32:512"):
        with pytest.raises(ValueError, match="unknown variant"):
            variant_config(bad)
