"""Training and the tools that run over a trained pipeline: targets and loss, the model a run starts
from (heads), LoRA, corpus converters, mixed units, checkpoints, calibration, evaluation, shipping."""
