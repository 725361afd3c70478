"""Shared fixtures: tiny local models (no hub) and pipelines using them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import spacy
from hypothesis import settings
from spacy.language import Language

from spacy_distilner.cpu import FLAGS_ENV, cpu_info
from tiny import BILOU, IOB2, make_tiny_model

# Property tests check correctness, not speed: no per-example deadline (a loaded 2-core CI
# machine made the default 200 ms one fail at random).
settings.register_profile("distilner", deadline=None)
settings.load_profile("distilner")

#: The two decisions ``precision="auto"`` makes on a CPU, as the CPU flags that lead to each: fp32 weights
#: (AVX2 only) and bf16 weights (AVX512-BF16, as on current AMD EPYC). Outside the ``decision`` fixture the
#: suite decides as on an AVX2 CPU on every machine, unless ``$DISTILNER_CPU_FLAGS`` is set.
DECISIONS = {"fp32": "avx2", "bf16": "avx2,avx512f,avx512_vnni,avx512_bf16"}
os.environ.setdefault(FLAGS_ENV, DECISIONS["fp32"])


@pytest.fixture(scope="module", params=list(DECISIONS))
def decision(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests (and the subprocesses they start) once under each precision decision:
    ``pytestmark = pytest.mark.usefixtures("decision")``. Yields ``"fp32"`` or ``"bf16"``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FLAGS_ENV, DECISIONS[request.param])
        cpu_info.cache_clear()
        yield request.param
    cpu_info.cache_clear()


#: The core suite (``pytest -m core``), run in a second environment beside the newest transformers 5.x:
#: the component and its stages, real text, the default model, ONNX, serialization and loading,
#: transformers' own pipeline, precision and training. It needs only the ``test-core`` extra.
CORE = {
    "test_component.py",
    "test_stages.py",
    "test_real_text.py",
    "test_default_model.py",
    "test_onnx.py",
    "test_safety.py",
    "test_serialization.py",
    "test_hf_api.py",
    "test_parity.py",
    "test_precision.py",
    "test_training.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of the ``CORE`` files ``core``."""
    for item in items:
        if item.path.name in CORE:
            item.add_marker(pytest.mark.core)


@pytest.fixture(scope="session")
def iob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random IOB2 DistilBERT token classifier (64-piece window)."""
    return make_tiny_model(tmp_path_factory.mktemp("iob"), IOB2, seed=0)


@pytest.fixture(scope="session")
def bilou_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BILOU DistilBERT token classifier."""
    return make_tiny_model(tmp_path_factory.mktemp("bilou"), BILOU, seed=1)


@pytest.fixture()
def nlp(iob_dir: Path) -> Language:
    """A blank English pipeline with distilner on the tiny IOB2 model."""
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    return nlp


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared NER data folder: $DISTILNER_DATA, else ``../shared/data`` beside the repository.

    Skips the test when the folder is missing, except on CI (``CI=true``), where it fails.
    """
    env = os.environ.get("DISTILNER_DATA")
    repo_root = Path(__file__).resolve().parents[1]
    path = Path(env) if env else repo_root.parent / "shared" / "data"
    if not path.is_dir():
        reason = f"shared data folder {path} not found (set DISTILNER_DATA to its location)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
