"""Weight checkpoints during ``spacy train``, and their average as a pipeline.

``[training.before_update]`` with ``@callbacks = "spacy_distilner.checkpoints.v1"`` saves the
distilner component's torch weights (safetensors) every ``every`` steps from step ``start``.
``distilner checkpoints average PIPELINE OUT CKPT...`` loads a trained
pipeline (e.g. ``model-last``), replaces its weights with the element-wise mean of the
checkpoints (the tail of a decaying schedule: checkpoint averaging) and saves it to ``OUT``.
Weights are read from safetensors only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from spacy.language import Language
from spacy.util import registry

from ..component import find_component
from ..records import load_pipeline

CKPT_PATTERN = "step-{step:06d}.safetensors"


def save_weights(nlp: Language, path: Path) -> None:
    """The distilner component's torch weights as one safetensors file at ``path`` (written atomically)."""
    from safetensors.torch import save_file

    model = find_component(nlp).hf_model
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)


@registry.callbacks("spacy_distilner.checkpoints.v1")
def create_checkpoint_callback(path: str, every: int = 50, start: int = 0) -> Callable[[Language, dict], None]:
    """A ``before_update`` callback that saves the weights every ``every`` steps from ``start``."""
    if every < 1:
        raise ValueError(f"checkpoints: every must be >= 1, got {every}")
    folder = Path(path)

    def before_update(nlp: Language, info: dict[str, Any]) -> None:
        step = int(info["step"])
        if step >= max(start, 1) and step % every == 0:
            save_weights(nlp, folder / CKPT_PATTERN.format(step=step))

    return before_update


def average(pipeline: Path, out: Path, checkpoints: Sequence[Path]) -> Language:
    """Load ``pipeline``, set its distilner weights to the mean of ``checkpoints``, save it to ``out``."""
    import torch
    from safetensors.torch import load_file

    if not checkpoints:
        raise ValueError("average: no checkpoints given")
    total: dict[str, torch.Tensor] = {}
    for ckpt in checkpoints:
        for name, tensor in load_file(str(ckpt)).items():
            total[name] = total[name] + tensor if name in total else tensor.clone()
    nlp, pipe = load_pipeline(pipeline=pipeline, precision="fp32")  # average in fp32
    model = pipe.hf_model
    expected = set(model.state_dict())
    if set(total) != expected:
        raise ValueError(f"average: the checkpoints' tensors differ from {pipeline}'s model")
    model.load_state_dict({name: t / len(checkpoints) for name, t in total.items()})
    nlp.to_disk(out)
    return nlp


def select(paths: Sequence[Path], from_step: int = 0) -> list[Path]:
    """Checkpoint files among ``paths`` (a folder stands for its ``step-*.safetensors``) from ``from_step`` on."""
    files = [f for p in paths for f in (sorted(p.glob("step-*.safetensors")) if p.is_dir() else [p])]
    return [f for f in files if not f.stem.startswith("step-") or int(f.stem[5:]) >= from_step]
