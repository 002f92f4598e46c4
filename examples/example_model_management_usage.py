"""A tour of model-manager's Python API, following the quick reference's quick reference.

Run it against your own Ollama (``OLLAMA_HOST``, default http://127.0.0.1:11434)::

    python examples/example_model_management_usage.py

or, on a machine without Ollama, against the bundled Ollama protocol double::

    python examples/example_model_management_usage.py --demo

``--demo`` also keeps its data in a temporary directory, so it leaves nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator

from model_manager import ModelManager, ModelPurpose


@contextlib.contextmanager
def open_manager(demo: bool) -> Iterator[ModelManager]:
    if not demo:
        with ModelManager() as manager:
            yield manager
        return
    from model_manager.testing import OllamaDouble

    with (
        OllamaDouble() as ollama,
        tempfile.TemporaryDirectory() as home,
        ModelManager(host=ollama.url, data_dir=home) as manager,
    ):
        yield manager


def tour(manager: ModelManager, vram_gb: float) -> None:
    print("== Catalog ==")
    for m in manager.list_available_models():
        state = "installed" if m["installed"] else ""
        print(f"  {m['name']:28} {m['size']:>5} {m['purpose']:<11} min {m['min_vram_gb'] or '?'} GB  {state}")
    speed = [m["name"] for m in manager.list_available_models(purpose=ModelPurpose.SPEED)]
    print(f"Speed models: {', '.join(speed)}")
    print(f"Fit in {vram_gb} GB: {len(manager.list_available_models(max_vram_gb=vram_gb))} models")

    print("\n== Recommendation and compatibility ==")
    model = manager.recommend_model(vram_gb, "balanced")
    print(f"Recommended for {vram_gb} GB, balanced: {model}")
    if model is None:
        return
    compatible, message = manager.check_model_compatibility(model, vram_gb)
    print(f"Compatible: {compatible} ({message})")

    print("\n== Download and switch ==")
    last = [0.0]

    def progress(status: str, completed: int, total: int) -> None:
        if total and time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            print(f"  {status}: {completed / total:.0%}")

    ok, message = manager.download_model(model, progress)
    print(f"Download: {ok} ({message})")
    if ok:
        print(f"Switch: {manager.switch_model(model)}; current model: {manager.get_current_model()}")

    print("\n== Usage statistics ==")
    for seconds, success in ((2.5, True), (1.9, True), (3.1, False)):
        manager.record_usage(model, seconds, success=success)
    stats = manager.get_model_statistics(model)
    assert stats is not None
    print(
        f"{model}: {stats['usage_count']} uses, {stats['success_rate'] * 100:.1f}% success, "
        f"{stats['avg_inference_time']:.2f}s average"
    )

    print("\n== Export ==")
    with tempfile.TemporaryDirectory() as tmp:
        print(manager.export_metadata(f"{tmp}/backup.json")[1])
        print(manager.import_metadata(f"{tmp}/backup.json")[1])

    print("\n== Errors are values in the quick-reference API ==")
    print(manager.delete_model(model))
    print(manager.check_model_compatibility("no-such-model", vram_gb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run against the bundled Ollama double")
    parser.add_argument("--vram", type=float, default=8.0, help="GB of VRAM to plan for (default 8)")
    args = parser.parse_args()
    with open_manager(args.demo) as manager:
        tour(manager, args.vram)


if __name__ == "__main__":
    main()
