"""GPU detection, importable as the seed writes it: ``from gpu_manager import GPUManager``."""
