"""GPU detection, importable as the quick reference writes it: ``from gpu_manager import GPUManager``."""

from __future__ import annotations

from model_manager.gpu import DetectionReport, GpuDevice, GPUManager

__all__ = ["DetectionReport", "GPUManager", "GpuDevice"]
