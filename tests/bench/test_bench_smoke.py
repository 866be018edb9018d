"""The benchmark suite's own smoke test: ``bench/run.py --quick`` runs every metric at
tiny sizes, with llama-cpp-python standing in for llama-bench, so the benchmark code
cannot rot. It checks the shape of the results, never the timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "store_open_conversation", "store_list_conversations", "store_search",
    "store_encrypted_open_conversation", "store_encrypted_list_conversations",
    "store_encrypted_search", "store_encrypted_slowdown",
    "decode_ratio", "prompt_ratio", "ttft_deep_ratio", "ttft_switch_ratio",
    "ttft_turn2_vs_llama", "ttft_last_turn_vs_llama", "long_chat_ttft_ratio",
    "long_chat_worst_ttft",
    "stop_latency_generation", "stop_latency_prompt",
    "gui_open_conversation", "gui_list_conversations", "gui_stall_streaming",
    "gui_cost_per_token_ratio", "launch_to_window", "launch_to_first_token",
    "memory_beyond_model", "download_ratio", "download_ratio_50mbps",
    "render_plain_ratio", "render_code_reply",
    "api_stream_ratio", "api_overhead_first_text", "replay_equal_to_fresh",
    "docs_recall_at5_keyword", "docs_index_files_per_s", "docs_retrieval_100k",
    "docs_recall_at5_hybrid", "docs_index_embed_ratio", "docs_index_gui_stall",
    "docs_index_rss",
}


@pytest.mark.model
@pytest.mark.slow
def test_quick_benchmark_writes_every_metric(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))

    assert report["quick"] is True
    assert report["errors"] == {}
    assert report["reference"]["kind"].startswith("llama-cpp-python")
    for key in ("cpu", "physical_cores", "threads_used", "ram_bytes"):
        assert key in report["machine"]
    for key in ("llama_cpp_python", "pyside6_essentials"):
        assert report["versions"][key]
    assert report["date"]

    by_name = {m["name"]: m for m in report["metrics"]}
    assert set(by_name) == EXPECTED
    for m in by_name.values():
        assert {"value", "unit", "goal", "median", "spread", "runs", "met"} <= set(m)
        assert m["goal"]["op"] in (">=", "<=")
        if m["measured"]:
            assert isinstance(m["value"], float)
            assert m["runs"]
        else:  # a row this machine cannot measure says why, and is not counted as met
            assert m["notes"] and m["value"] is None and not m["met"], m["name"]
        if m["unit"] == "×" and m["measured"]:
            assert m["reference"]["median"] > 0 and m["numerator"]["median"] > 0
    assert any(m["measured"] for m in by_name.values()), "the quick run measures something"
    assert "| metric |" in proc.stdout
