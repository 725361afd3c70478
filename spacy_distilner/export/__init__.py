"""Export the token classifier to ONNX (fp32, int8, fp16) and validate it against PyTorch.

Not imported at inference. CLI: ``distilner export-onnx SRC OUT_DIR``.
"""

from .onnx import convert_fp16, export_onnx, export_variants, optimize, quantize_dynamic_int8, validate

__all__ = ["convert_fp16", "export_onnx", "export_variants", "optimize", "quantize_dynamic_int8", "validate"]
