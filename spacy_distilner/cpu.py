"""What the CPU (and accelerator) can do, detected once: the choice of precision and int8 kernels follows it.

bf16 weights run the forward pass several times faster than fp32 where the CPU has native bf16
(AMX or AVX512-BF16) and are slower where it has not; int8 ONNX kernels are u8s8 (VNNI/AMX) or
u8u8 (AVX2), and the weight recipe that is fast on one family is slow on the other.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Int8Family = Literal["vnni", "avx2"]
#: /proc/cpuinfo flags reported (``avx_vnni``: the 256-bit VNNI of recent client CPUs)
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and the instruction-set flags that matter for inference."""

    model: str
    flags: tuple[str, ...]

    @property
    def native_bf16(self) -> bool:
        """bf16 matrix kernels in hardware (AMX or AVX512-BF16)."""
        return "amx_bf16" in self.flags or "avx512_bf16" in self.flags

    @property
    def int8_family(self) -> Int8Family:
        """``vnni`` where u8s8 dot-product instructions exist (AVX-512 VNNI, AVX-VNNI, AMX), else ``avx2``."""
        return "vnni" if {"avx512_vnni", "avx_vnni", "amx_int8"} & set(self.flags) else "avx2"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "native_bf16": self.native_bf16, "int8_family": self.int8_family}


def parse_cpuinfo(text: str) -> CpuInfo:
    """A ``CpuInfo`` from the text of ``/proc/cpuinfo`` (the first processor's model and flags)."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    model = model or platform.processor() or platform.machine()
    return CpuInfo(model, tuple(f for f in FLAGS if f in flags))


#: comma-separated flags that replace the detected ones (to force a choice, or to test another CPU's)
FLAGS_ENV = "DISTILNER_CPU_FLAGS"


def _detected() -> CpuInfo:
    """The CPU as the system reports it (Linux: ``/proc/cpuinfo``; elsewhere torch's capability string)."""
    path = Path("/proc/cpuinfo")
    if path.is_file():
        return parse_cpuinfo(path.read_text(errors="replace"))
    import torch

    capability = torch.backends.cpu.get_cpu_capability().lower()  # "AVX2", "AVX512", "DEFAULT"
    flags = {"avx2": ("avx2",), "avx512": ("avx2", "avx512f")}.get(capability, ())
    return CpuInfo(platform.processor() or platform.machine(), flags)


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU, read once; ``$DISTILNER_CPU_FLAGS`` replaces the flags."""
    found = _detected()
    if os.environ.get(FLAGS_ENV) is None:
        return found
    forced = {f.strip() for f in os.environ[FLAGS_ENV].split(",")}
    return CpuInfo(f"{found.model} (flags from ${FLAGS_ENV})", tuple(f for f in FLAGS if f in forced))


def accelerators() -> dict[str, bool]:
    """Whether torch sees CUDA or MPS."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return {"cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}
