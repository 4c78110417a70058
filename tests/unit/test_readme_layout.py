"""The README's layout table is the map a new maintainer reads first: it must name every module that exists, and
nothing that does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "signals", "scoring", "notifier")
LAYERS = ("domain", "handlers", "adapters", "entrypoints", "bootstrap.py")


def _row(path: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"^\| `{re.escape(path)}` \| (.*) \|$", readme, re.MULTILINE)
    assert found, f"README.md has no layout row for {path}"
    return found.group(1)


def _modules(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*.py") if p.name != "__init__.py"}


@pytest.mark.parametrize("service", SERVICES)
def test_every_module_of_a_service_is_in_its_row_and_every_named_one_exists(service: str) -> None:
    folder = ROOT / "services" / service
    row = _row(f"services/{service}/")
    named = set(re.findall(r"`([a-z_]+\.py)`", row))
    # a subpackage the row names as a folder (console/, channels/, outcomes/) stands for every module in it; the
    # layers' own folders (domain/, adapters/, ...) stand for nothing: their modules are named one by one
    folders = set(re.findall(r"`([a-z_]+)/`", row)) - {"domain", "handlers", "adapters", "entrypoints"}
    covered = {p.name for sub in folders for p in folder.rglob(f"{sub}/**/*.py") if p.name != "__init__.py"}
    assert _modules(folder) - named - covered == set(), f"README's {service} row misses these modules"
    assert named - _modules(folder) == set(), f"README's {service} row names modules that do not exist"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_one_shape(service: str) -> None:
    folder = ROOT / "services" / service
    for layer in LAYERS:
        assert (folder / layer).exists() or (folder / f"{layer}.py").exists(), f"services/{service} has no {layer}"
    assert (folder / "domain" / "config.py").exists(), f"services/{service} keeps its config section elsewhere"
    if service != "signals":  # signals keeps its state in a Faust table, not in the database
        assert (folder / "adapters" / "tables.py").exists(), f"services/{service} keeps its tables elsewhere"
    assert (folder / "domain" / "__init__.py").read_text(encoding="utf-8").count("\n") <= 2, "domain/__init__.py holds code"


def test_the_shared_row_names_every_shared_module() -> None:
    row = _row("shared/")
    assert (
        _modules(ROOT / "shared")
        - {p.name for p in (ROOT / "shared" / "migrations").rglob("*.py")}
        - set(re.findall(r"`([a-z_]+\.py)`", row))
        == set()
    )


def test_no_service_imports_another() -> None:
    """Services talk through Kafka topics and the shared tables, never through each other's code."""
    for service in SERVICES:
        others = "|".join(s for s in SERVICES if s != service)
        for module in (ROOT / "services" / service).rglob("*.py"):
            text = module.read_text(encoding="utf-8")
            assert not re.search(rf"^\s*(from|import) services\.({others})\b", text, re.MULTILINE), f"{module} imports another service"
