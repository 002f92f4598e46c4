"""The design holds: layers point one way, each outside dependency has one home, the public names are
listed, and a REST switch validates its name once and builds one set of records."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import model_manager
from helpers import catalog_tag
from model_manager import ModelManager, names
from model_manager.inventory import Inventory
from model_manager.testing import OllamaDouble

PACKAGE = Path(model_manager.__file__).parent

# Lower numbers are lower layers; a module may import its own layer or lower ones only.
LAYERS = {
    "errors": 0,
    "units": 0,
    "types": 0,
    "measured": 0,
    "names": 0,
    "ollama_defaults": 0,
    "config": 0,
    "liveness": 0,
    "catalog": 1,
    "store": 1,
    "exchange": 1,
    "ollama_answers": 1,
    "ollama_client": 1,
    "gpu": 1,
    "memory.hparams": 1,
    "memory.estimator": 1,
    "memory.fit": 1,
    "memory.verdict": 1,
    "memory.plan": 1,
    "memory.sizing": 1,
    "memory": 1,
    "recommend": 1,
    "views": 1,
    "quality": 1,
    "speed": 1,
    "inventory": 2,
    "hosts": 2,
    "memory.planner": 2,
    "speed_planner": 2,
    "benchmark": 2,
    "recommender": 2,
    "transfer": 2,
    "switching": 2,
    "manager": 3,
    "fleet": 4,
    "placement": 4,
    "quick_reference": 4,
    "api": 5,
    "api.dashboard": 5,
    "api.machine": 5,
    "api.assets": 5,
    "api.docs": 5,
    "cli": 5,
    "__main__": 5,
    "": 5,  # the package root re-exports the public names of every layer
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int | None:
    if module == "":
        return LAYERS[""]
    while module:
        if module in LAYERS:
            return LAYERS[module]
        module = module.rpartition(".")[0]
    return None


def _imports(path: Path) -> list[str]:
    """The package modules ``path`` imports (relative imports resolved)."""
    module = _module_name(path).split(".")
    package = module if path.name == "__init__.py" else module[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            for alias in node.names:
                found.append(f"{target}.{alias.name}" if _layer(f"{target}.{alias.name}") else target)
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [m.removeprefix("model_manager.") for m in mods if m.startswith("model_manager")]
    return found


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: _module_name(p) or "__init__")
def test_imports_point_down(path: Path) -> None:
    own = _layer(_module_name(path))
    assert own is not None, f"{path} belongs to no layer"
    upward = [m for m in _imports(path) if (_layer(m) or 0) > own and not m.startswith(_module_name(path))]
    assert upward == [], f"{_module_name(path)} (layer {own}) imports {upward}"


@pytest.mark.parametrize(
    ("needle", "home"),
    [
        ("os.environ", {"config.py"}),
        ("import sqlite3", {"sqlite.py"}),
        ("import psycopg", {"postgres.py"}),
        ("import httpx", {"ollama_client.py"}),
        ("import uvicorn", {"server.py"}),
        ("GIB = ", {"units.py"}),
    ],
)
def test_each_outside_dependency_has_one_home(needle: str, home: set[str]) -> None:
    users = {p.name for p in _sources() if needle in p.read_text()}
    assert users <= home, f"{needle!r} in {sorted(users - home)}"


def test_the_testing_package_stands_apart() -> None:
    """The Ollama double imports none of the layers above the plain records it shares."""
    for path in sorted((PACKAGE / "testing").rglob("*.py")):
        above = [m for m in _imports(path) if (_layer(m) or 0) > 1]
        assert above == [], f"{path.name} imports {above}"


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert model_manager.__all__ == sorted(model_manager.__all__)
    for name in model_manager.__all__:
        assert getattr(model_manager, name) is not None, name
    errors = {n for n in dir(model_manager.errors) if n.endswith("Error") and n[0].isupper()}
    exported = {n for n in model_manager.__all__ if n.endswith("Error")}
    assert exported <= errors


def test_a_rest_switch_validates_its_name_once_and_builds_one_snapshot(
    manager: ModelManager, ollama: OllamaDouble, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
    manager.sync()
    requested = "LLAMA3.2:1B"  # an alias, spelled unlike any name the records are indexed by
    parsed: list[object] = []
    calls = {"snapshot": 0, "sync": 0}
    real_parse, real_snapshot, real_sync = names.parse_model_name, Inventory.snapshot, Inventory.sync

    def parse(raw: object) -> names.ModelName:
        parsed.append(raw)
        return real_parse(raw)

    def snapshot(self: Inventory, **kw: Any) -> Any:
        calls["snapshot"] += 1
        return real_snapshot(self, **kw)

    def sync(self: Inventory) -> Any:
        calls["sync"] += 1
        return real_sync(self)

    monkeypatch.setattr(names, "parse_model_name", parse)
    monkeypatch.setattr(Inventory, "snapshot", snapshot)
    monkeypatch.setattr(Inventory, "sync", sync)
    answer = client.post("/api/model/switch", json={"model": requested}).json()
    assert answer["success"] is True and answer["model"] == "llama3.2:1b-instruct"
    assert parsed.count(requested) == 1
    assert calls == {"snapshot": 1, "sync": 1}
