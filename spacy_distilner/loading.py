"""Load a transformers token classifier and its fast tokenizer from a local directory, safely.

Only safetensors weights are read (never pickles, never remote code), nothing is
downloaded unless the name is a hub id and a hub is reachable, and every way a
directory can be wrong gives an error that names the problem.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from safetensors import safe_open

from .errors import Errors

MODELS_DIR = Path(__file__).parent / "models"
#: Names that ``config={"model": ...}`` resolves to directories shipped in the package.
KNOWN_MODELS = {"default": MODELS_DIR / "en_conll03", "en_conll03": MODELS_DIR / "en_conll03"}


HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]


def resolve_model_path(name: str) -> Path:
    """A shipped model name, a directory, or a Hugging Face hub id (``org/name``) -> a local directory.

    A hub id is fetched (safetensors, config and tokenizer files only) where a hub is
    reachable; with no hub (offline, ``HF_HUB_OFFLINE=1``) it fails with a clear error.
    """
    if name in KNOWN_MODELS:
        return KNOWN_MODELS[name]
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if name.count("/") == 1 and not name.startswith((".", "/", "~")) and not path.exists():
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(name, allow_patterns=HUB_FILES))
        except Exception as err:  # offline, unknown repo, no permission: report it with the name
            raise ValueError(Errors.D011.format(name=name, known=", ".join(KNOWN_MODELS), err=err)) from err
    raise ValueError(Errors.D001.format(path=path))


def _weight_files(path: Path) -> list[Path]:
    if (path / "model.safetensors").is_file():
        return [path / "model.safetensors"]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [path / s for s in shards]
    pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
    extra = f"Found only pickled weights ({', '.join(pickles)}). " if pickles else ""
    raise ValueError(Errors.D002.format(path=path, extra=extra))


def _head_shape(files: list[Path]) -> tuple[int, int] | None:
    """Shape of the token-classification head (``classifier.weight``), if the weights have one."""
    for file in files:
        with safe_open(str(file), framework="numpy") as f:
            for key in f.keys():
                if key == "classifier.weight" or key.endswith(".classifier.weight"):
                    return tuple(f.get_slice(key).get_shape())  # type: ignore[return-value]
    return None


def check_model_dir(path: Path) -> dict:
    """Validate a token-classifier directory before loading; return its config dict."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ValueError(Errors.D001.format(path=path / "config.json"))
    config = json.loads(config_file.read_text())
    files = _weight_files(path)
    shape = _head_shape(files)
    if shape is None:
        raise ValueError(Errors.D003.format(path=path, missing="'classifier.weight'"))
    n_labels = len(config.get("id2label", {}))
    if n_labels != shape[0]:
        raise ValueError(Errors.D004.format(n_labels=n_labels, n_rows=shape[0], path=path))
    return config


def load_tokenizer(path: Path):
    """The fast tokenizer stored in ``path``."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), use_fast=True, local_files_only=True)
    except Exception as err:  # transformers raises many types here; re-raise with context
        raise ValueError(Errors.D012.format(path=path, err=err)) from err
    if not tok.is_fast:
        raise ValueError(Errors.D012.format(path=path, err="only a slow tokenizer is available"))
    return tok


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """No "Loading checkpoint shards" bar for the shipped (sharded) model; restores the setting."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_classifier(path: Path):
    """The ``AutoModelForTokenClassification`` stored in ``path`` (validated first), in eval mode."""
    from transformers import AutoModelForTokenClassification

    check_model_dir(path)
    try:
        with _quiet_progress():
            model, info = AutoModelForTokenClassification.from_pretrained(
                str(path),
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=False,
                output_loading_info=True,
            )
    except Exception as err:  # wrong architecture, corrupt file, …: say which directory
        raise ValueError(Errors.D015.format(path=path, err=err)) from err
    if info["missing_keys"]:
        raise ValueError(Errors.D003.format(path=path, missing=", ".join(info["missing_keys"][:5])))
    return model.eval()


def load_for_training(path: Path, tags: tuple[str, ...]):
    """An encoder (or a token classifier) from ``path`` with a head for ``tags``.

    The head is kept when its tags are exactly ``tags`` (resuming), else freshly initialised.
    """
    from transformers import AutoModelForTokenClassification

    config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else None
    if config is None:
        raise ValueError(Errors.D001.format(path=path / "config.json"))
    _weight_files(path)  # refuses pickle-only directories
    try:
        return AutoModelForTokenClassification.from_pretrained(
            str(path),
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
            num_labels=len(tags),
            id2label=dict(enumerate(tags)),
            label2id={t: i for i, t in enumerate(tags)},
            ignore_mismatched_sizes=True,
        )
    except Exception as err:  # wrong architecture, corrupt file, …: say which directory
        raise ValueError(Errors.D015.format(path=path, err=err)) from err
