"""Load a transformers token classifier and its fast tokenizer from a local directory, safely.

Only safetensors weights are read (never pickles, never remote code), nothing is
downloaded unless the name is a hub id and a hub is reachable, and every way a
directory can be wrong gives an error that names the problem.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np
from safetensors import safe_open

from .errors import Errors
from .model_dir import ADAPTER_DIR, WEIGHTS_KEY, read_json_object, read_settings, verify_weights, write_settings
from .settings import import_transformers
from .tokenize import normalize_unicode
from .training.lora import is_lora, merge, save_adapter

MODELS_DIR = Path(__file__).parent / "models"
#: Names that ``config={"model": ...}`` resolves to directories shipped in the package.
KNOWN_MODELS = {
    "default": MODELS_DIR / "en_conll03",
    "en_conll03": MODELS_DIR / "en_conll03",
    "multilingual": MODELS_DIR / "xx_conll03",
    "xx_conll03": MODELS_DIR / "xx_conll03",
}


HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]


HUB_PREFIX = "hf:"  # ``hf:org/name``: the only spelling fetched from the Hugging Face hub


def resolve_model_path(name: str) -> Path:
    """A shipped model name, a local directory, or ``hf:org/name`` (a hub id) -> a local directory.

    Any other string is a local path, so a directory that does not exist fails at once with D001
    (it is never looked up on the hub). A hub id is fetched (safetensors, config and tokenizer
    files only) where a hub is reachable; with none (``HF_HUB_OFFLINE=1``) it fails with D011.
    """
    if name.startswith(HUB_PREFIX):
        from huggingface_hub import snapshot_download

        repo_id = name[len(HUB_PREFIX) :]
        try:
            return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
        except Exception as err:  # offline, unknown repo, no permission: report it with the name
            raise ValueError(Errors.D011.format(name=repo_id, known=", ".join(KNOWN_MODELS), err=err)) from err
    path = KNOWN_MODELS.get(name, Path(name).expanduser())
    if path.is_dir():
        from .embeddings import MANIFEST, materialize

        return materialize(path) if (path / MANIFEST).is_file() else path
    raise ValueError(Errors.D001.format(path=path))


def weight_files(path: Path) -> list[Path]:
    """The safetensors files of the model in ``path``: one file or the shards its index names
    (D022 for a bad index, D002 when there are only pickled weights)."""
    if (path / "model.safetensors").is_file():
        return [path / "model.safetensors"]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(v, str) for v in weight_map.values()):
            raise ValueError(Errors.D022.format(file=index, problem="no 'weight_map' of tensor names to shard files"))
        root = path.resolve()
        shards = []
        for shard in sorted(set(weight_map.values())):
            file = path / shard
            if Path(shard).is_absolute() or root not in file.resolve().parents:
                raise ValueError(Errors.D022.format(file=index, problem=f"it names a shard outside the model directory: {shard!r}"))
            if not file.is_file():
                raise ValueError(Errors.D022.format(file=index, problem=f"it names a shard that does not exist: {shard!r}"))
            shards.append(file)
        return shards
    pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
    extra = f"Found only pickled weights ({', '.join(pickles)}). " if pickles else ""
    raise ValueError(Errors.D002.format(path=path, extra=extra))


def write_model_settings(path: Path, settings: Mapping[str, Any]) -> None:
    """``distilner.json`` for the model saved in ``path``, with the digests of its weight files."""
    write_settings(path, settings, weight_files(path))


def save_weights(path: Path, hf_model: Any) -> None:
    """Save ``hf_model``'s config and safetensors weights, as held, into ``path`` (a LoRA model merged,
    its adapter alone under ``ADAPTER_DIR``)."""
    path.mkdir(parents=True, exist_ok=True)
    if is_lora(hf_model):
        save_adapter(hf_model, path / ADAPTER_DIR)
        hf_model = merge(hf_model)
    with _quiet_progress():  # transformers 5 shows a "Writing model shards" bar
        hf_model.save_pretrained(str(path), safe_serialization=True)


def copy_weights(source: Path, path: Path) -> None:
    """Copy the config and safetensors weights (and shard index) of the model in ``source`` into ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    index = source / "model.safetensors.index.json"
    for file in [source / "config.json", *([index] if index.is_file() else []), *weight_files(source)]:
        target = path / file.name
        if not (target.is_file() and target.samefile(file)):
            shutil.copyfile(file, target)


def read_arrays(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of the model in ``path`` as a float32 numpy array, one at a time, with its name
    (bf16 tensors, which numpy lacks, are read through torch)."""
    for file in weight_files(path):
        with safe_open(str(file), framework="numpy") as f:
            for name in f.keys():
                if f.get_slice(name).get_dtype() != "BF16":
                    yield name, f.get_tensor(name).astype(np.float32)
                    continue
                with safe_open(str(file), framework="pt") as pt:
                    yield name, pt.get_tensor(name).float().numpy()


def head_shape(files: list[Path]) -> tuple[int, int] | None:
    """Shape of the token-classification head (``classifier.weight``), if the weights have one;
    D022 for a file that is not valid safetensors (truncated, garbage)."""
    for file in files:
        try:
            with safe_open(str(file), framework="numpy") as f:
                for key in f.keys():
                    if key == "classifier.weight" or key.endswith(".classifier.weight"):
                        return tuple(f.get_slice(key).get_shape())  # type: ignore[return-value]
        except Exception as err:  # safetensors raises its own error type for a bad header
            raise ValueError(Errors.D022.format(file=file, problem=f"not a valid safetensors file ({err})")) from err
    return None


def check_model_dir(path: Path) -> dict:
    """Validate a token-classifier directory before loading; return its config dict."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ValueError(Errors.D001.format(path=path / "config.json"))
    config = read_json_object(config_file)
    id2label = config.get("id2label", {})
    if not isinstance(id2label, dict) or set(id2label) != {str(i) for i in range(len(id2label))}:
        keys = sorted(id2label) if isinstance(id2label, dict) else id2label
        raise ValueError(Errors.D022.format(file=config_file, problem=f"id2label keys must be 0 … n-1, got {keys!r}"))
    files = weight_files(path)
    verify_weights(path, read_settings(path).get(WEIGHTS_KEY) or {})
    shape = head_shape(files)
    if shape is None:
        raise ValueError(Errors.D003.format(path=path, missing="'classifier.weight'"))
    n_labels = len(config.get("id2label", {}))
    if n_labels != shape[0]:
        raise ValueError(Errors.D004.format(n_labels=n_labels, n_rows=shape[0], path=path))
    return config


def _tokenizer_loader(path: Path) -> Callable[..., Any]:
    """``from_pretrained`` of the fast tokenizer class ``tokenizer_config.json`` names (what ``AutoTokenizer``
    picks first), imported alone (``AutoTokenizer`` imports every tokenizer module transformers has);
    ``AutoTokenizer``'s when none is named."""
    transformers = import_transformers()
    config = path / "tokenizer_config.json"
    name = read_json_object(config).get("tokenizer_class") if config.is_file() else None
    if isinstance(name, str):
        found = getattr(transformers, name if name.endswith("Fast") else f"{name}Fast", None)
        if isinstance(found, type) and issubclass(found, transformers.PreTrainedTokenizerFast):
            return found.from_pretrained
    return partial(transformers.AutoTokenizer.from_pretrained, use_fast=True)


def load_tokenizer(path: Path):
    """The fast tokenizer stored in ``path``, reading user text in NFC (``tokenize.normalize_unicode``)."""
    try:
        tok = _tokenizer_loader(path)(str(path), local_files_only=True)
    except Exception as err:  # transformers raises many types here; re-raise with context
        raise ValueError(Errors.D012.format(path=path, err=err)) from err
    if not tok.is_fast:
        raise ValueError(Errors.D012.format(path=path, err="only a slow tokenizer is available"))
    return normalize_unicode(tok)


def dtype_argument(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s keyword for the weights' torch dtype: ``dtype`` from transformers 4.56
    (``torch_dtype`` is deprecated there), ``torch_dtype`` before (where ``dtype`` would be ignored)."""
    from packaging.version import Version

    name = "dtype" if Version(import_transformers().__version__) >= Version("4.56") else "torch_dtype"
    return {name: dtype}


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """No transformers progress bar (loading or writing checkpoint shards) inside; restores the setting."""
    hf_logging = import_transformers().utils.logging
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_classifier(path: Path, dtype: Optional[str] = None):
    """The ``AutoModelForTokenClassification`` stored in ``path`` (validated first), in eval mode;
    ``dtype="bf16"`` loads the tensors straight into bf16 (no fp32 copy on the way)."""
    import torch

    check_model_dir(path)
    try:
        with _quiet_progress():
            model, info = import_transformers().AutoModelForTokenClassification.from_pretrained(
                str(path),
                **dtype_argument(torch.bfloat16 if dtype == "bf16" else torch.float32),
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
