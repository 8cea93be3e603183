"""bench/admission.py at a tiny size: every mode completes with no errors, every object is
stored, and the webhook mode's creates all reach the webhook."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "admission.py"


@pytest.fixture
def admission(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/admission.py as a module (its environment and sys.path changes undone afterwards)."""
    monkeypatch.setenv("KUBELITE_OFFLINE", "1")
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("bench_admission", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up in sys.modules.
    monkeypatch.setitem(sys.modules, spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


def test_every_admission_mode_completes_without_errors(admission: ModuleType, tmp_path: Path) -> None:
    clients, creates = 4, 5
    results = admission.run(tmp_path, creates, clients)
    assert [r.mode for r in results] == ["configmap", "cr", "cel", "webhook", "vap"]
    for r in results:
        assert (r.mode, r.errors) == (r.mode, 0)
        assert (r.mode, r.creates, len(r.latencies), r.stored) == (r.mode, 20, 20, 20)
        assert r.rate > 0
    by_mode = {r.mode: r for r in results}
    assert by_mode["webhook"].webhook_reviews == 20
    table = admission.table(results, clients, creates)
    assert table.row_count == 5
