"""A tour of model-manager's Python API, following the quick reference.

Against your own Ollama (``OLLAMA_HOST``, default http://127.0.0.1:11434) and your own store, the tour
only reads: the catalog, a recommendation, compatibility, the current model and recorded usage::

    python examples/example_model_management_usage.py

On a machine without Ollama, the whole tour (download, switch, usage, export and import, errors) runs
against the bundled Ollama protocol double, with its data in a temporary directory that is removed
afterwards::

    python examples/example_model_management_usage.py --demo

Either way no usage, current model or metadata is written to your store (reading the catalog refreshes
the store's record of what Ollama has installed, as ``model-manager list`` does). The exit status is 1
when a step fails (Ollama does not answer, a download fails, …).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator

from model_manager import ModelManager, ModelManagerError, ModelPurpose


class StepFailed(Exception):
    """A step of the tour did not do what it should; the message says which and why."""


def check(ok: bool, step: str, manager: ModelManager) -> None:
    if not ok:
        reason = manager.last_error.message if manager.last_error else "no reason given"
        raise StepFailed(f"{step} failed: {reason}")


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


def catalog_tour(manager: ModelManager, vram_gb: float) -> str | None:
    """Reading steps; returns the recommended model."""
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
    if model is not None:
        compatible, message = manager.check_model_compatibility(model, vram_gb)
        print(f"Compatible: {compatible} ({message})")
    return model


def read_only_tour(manager: ModelManager, vram_gb: float) -> None:
    """What can be shown without changing anything in Ollama or in the store."""
    report = manager.health()
    if report.ollama_failure is not None:
        raise report.ollama_failure  # Ollama unreachable, with the reason and the solution
    print(f"Ollama {report.ollama_version} at {report.ollama_host}\n")
    model = catalog_tour(manager, vram_gb)

    print("\n== Current model and usage (as recorded) ==")
    current = manager.get_current_model()
    print(f"Current model: {current}")
    if manager.last_error is not None:
        print(f"  ({manager.last_error.message})")
    for name in dict.fromkeys(n for n in (current, model) if n):
        stats = manager.get_model_statistics(name)
        check(stats is not None, f"statistics of {name}", manager)
        assert stats is not None
        print(f"{name}: {stats['usage_count']} uses recorded, installed: {stats['installed']}")
    print("\nDownloads, switches, usage and import change things: `--demo` shows them on the Ollama double.")


def full_tour(manager: ModelManager, vram_gb: float) -> None:
    """Every step, changing the (temporary) store and the (double's) models."""
    model = catalog_tour(manager, vram_gb)
    if model is None:
        raise StepFailed(f"no balanced model fits in {vram_gb} GB")

    print("\n== Download and switch ==")
    last = [0.0]

    def progress(status: str, completed: int, total: int) -> None:
        if total and time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            print(f"  {status}: {completed / total:.0%}")

    ok, message = manager.download_model(model, progress)
    print(f"Download: {ok} ({message})")
    check(ok, f"download of {model}", manager)
    switched = manager.switch_model(model)
    print(f"Switch: {switched}; current model: {manager.get_current_model()}")
    check(switched, f"switch to {model}", manager)

    print("\n== Usage statistics ==")
    for seconds, success in ((2.5, True), (1.9, True), (3.1, False)):
        manager.record_usage(model, seconds, success=success)
    stats = manager.get_model_statistics(model)
    check(stats is not None, f"statistics of {model}", manager)
    assert stats is not None
    print(
        f"{model}: {stats['usage_count']} uses, {stats['success_rate'] * 100:.1f}% success, "
        f"{stats['avg_inference_time']:.2f}s average"
    )

    print("\n== Export ==")
    with tempfile.TemporaryDirectory() as tmp:
        for step, (ok, message) in (
            ("export", manager.export_metadata(f"{tmp}/backup.json")),
            ("import", manager.import_metadata(f"{tmp}/backup.json")),
        ):
            print(message)
            check(ok, step, manager)

    print("\n== Errors are values in the quick-reference API ==")
    print(manager.delete_model(model))  # refused: it is the current model
    print(manager.check_model_compatibility("no-such-model", vram_gb))  # refused: no such model


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="the whole tour, on the bundled Ollama double")
    parser.add_argument("--vram", type=float, default=8.0, help="GB of VRAM to plan for (default 8)")
    args = parser.parse_args()
    try:
        with open_manager(args.demo) as manager:
            (full_tour if args.demo else read_only_tour)(manager, args.vram)
    except (StepFailed, ModelManagerError) as exc:
        solution = f"\nSolution: {exc.solution}" if isinstance(exc, ModelManagerError) else ""
        print(f"\n{exc}{solution}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
