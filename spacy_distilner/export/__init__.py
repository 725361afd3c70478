"""Export the token classifier to ONNX (fp32, int8, fp16) and validate it against PyTorch.

Not imported at inference. CLI: ``distilner export-onnx SRC OUT_DIR``. The export is
``backends.onnx_export`` (the ONNX backend calls it when its graph is missing); ``export.onnx`` checks it.
"""

from ..backends.onnx_export import convert_fp16, export_onnx, export_variants, optimize, quantize_dynamic_int8
from .onnx import validate

__all__ = ["convert_fp16", "export_onnx", "export_variants", "optimize", "quantize_dynamic_int8", "validate"]
