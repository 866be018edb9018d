"""bench/gpu_fit_check.py as a process: on a llama.cpp without a GPU backend it says so
and exits 0 with Automatic at 0 layers; with one, llama.cpp must place the layers that
Automatic chose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llamadesk.services.gpu_probe import probe_gpus

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_fit_check(tmp_path: Path, bundled_model_path: Path) -> None:
    out = tmp_path / "gpu_fit.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_fit_check.py"), "--output", str(out)],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=300,
        check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if not probe_gpus().devices:
        assert "No GPU" in proc.stdout
        assert "Automatic chooses 0 layers" in proc.stdout
        assert not out.exists()
    else:
        runs = json.loads(out.read_text(encoding="utf-8"))["runs"]
        assert [r["placed_as_chosen"] for r in runs] == [True, True]
