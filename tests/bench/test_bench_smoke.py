"""The benchmark suite's own smoke test: ``bench/run.py --quick`` runs every metric at
tiny sizes, with llama-cpp-python standing in for llama-bench, so the benchmark code
cannot rot. It checks the shape of the results, never the timings. The run starts in the
background when collection ends and this test runs last (tests/support/background_runs.py)."""

from __future__ import annotations

import json

import pytest
from background_runs import BackgroundRun

EXPECTED = {
    "store_open_conversation", "store_list_conversations", "store_search",
    "store_encrypted_open_conversation", "store_encrypted_list_conversations",
    "store_encrypted_search", "store_encrypted_slowdown",
    "decode_ratio", "decode_ratio_at_depth", "prompt_ratio", "ttft_deep_ratio", "ttft_switch_ratio",
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
    "docs_index_rss", "docs_hybrid_retrieval_100k", "docs_hybrid_retrieval_100k_encrypted",
}


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.timeout(600)  # run alone on a busy machine, it is all waiting for the process
def test_quick_benchmark_writes_every_metric(background_run: BackgroundRun) -> None:
    status, stdout, stderr = background_run.wait(timeout=580)
    assert status == 0, stdout[-3000:] + stderr[-3000:]
    out = background_run.folder / "latest.json"
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
    assert "| metric |" in stdout
