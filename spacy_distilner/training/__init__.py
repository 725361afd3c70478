"""Training and the tools that run over a trained pipeline: corpus converters, mixed units, loss,
the component's training hooks (trainer), LoRA, checkpoints, calibration, evaluation, shipping."""
