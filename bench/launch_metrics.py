"""The app as a real process: launch to usable window, launch to first token, and its
resident memory beyond the model file.

The app records its own events when ``LLAMADESK_BENCH_TIMINGS`` names a file (see
``llamadesk.ui.app``); ``LLAMADESK_BENCH_SEND`` makes it send one message as soon as
the window is idle, as a user typing at once would. Times are wall clock, from just
before the process is started here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from common import ROOT, Goal, Metric, not_measured, repeat, summarize, warmups

MESSAGE = "Hello! Say hello back in one short sentence."


def _smaps_breakdown(pid: int, model_name: str) -> dict[str, float]:
    """Resident MB by kind: anonymous (heaps, KV cache, buffers), the model file,
    other files (libraries)."""
    out = {"anon_mb": 0.0, "model_file_mb": 0.0, "other_files_mb": 0.0}
    current = "anon"
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                first = line.split(maxsplit=1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    path = parts[5] if len(parts) > 5 else ""
                    current = ("model" if path.endswith(model_name) else
                               "anon" if not path.startswith("/") else "other")
                elif first == "Rss:":
                    mb = int(line.split()[1]) / 1024
                    key = {"model": "model_file_mb", "anon": "anon_mb",
                           "other": "other_files_mb"}[current]
                    out[key] += mb
    except OSError:
        pass
    return {k: round(v, 1) for k, v in out.items()}


def launch_once(home: Path, events_file: Path, model_name: str,
                timeout_s: float = 300) -> dict[str, Any]:
    """Start the app, let it send one message, measure, then end it."""
    events_file.unlink(missing_ok=True)
    env = {**os.environ, "LLAMADESK_HOME": str(home),
           "LLAMADESK_BENCH_TIMINGS": str(events_file), "LLAMADESK_BENCH_SEND": MESSAGE,
           "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "llamadesk"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    events: dict[str, float] = {}
    cpu: dict[str, float | None] = {}  # the app's CPU seconds at each event
    result: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + timeout_s
        while "reply_finished" not in events:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"the app exited early ({proc.returncode}): {err[-500:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the app did not answer in time")
            failed = [e for e in events if e.startswith("reply_failed")]
            if failed:
                raise RuntimeError(failed[0])
            time.sleep(0.01)
            if events_file.exists():
                for line in events_file.read_text(encoding="utf-8").splitlines():
                    e = json.loads(line)
                    events.setdefault(e["event"], e["t"])
                    cpu.setdefault(e["event"], e.get("cpu"))
        time.sleep(0.3)  # let the reply settle (stored, painted) before measuring memory
        p = psutil.Process(proc.pid)
        full = p.memory_full_info()
        result = {
            "events_s": {k: round(v - t0, 3) for k, v in events.items()},
            "cpu_s": {k: round(v, 3) for k, v in cpu.items() if v is not None},
            "rss": full.rss, "uss": full.uss, "pss": getattr(full, "pss", None),
            "smaps": _smaps_breakdown(proc.pid, model_name),
            "threads": p.num_threads(),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result


def compile_app() -> None:
    """Write the app's bytecode before it is launched, as an installed app has it (pip
    and the installers compile it): with PYTHONDONTWRITEBYTECODE set, as on the
    machines this runs on, a module changed since its .pyc was written would be
    compiled from source at every launch and counted as start-up."""
    import compileall

    import llamadesk

    compileall.compile_dir(Path(llamadesk.__file__).parent, quiet=1)


def run(work: Path, quick: bool, runs: int, *, memory: bool, launch: bool,
        model_bytes: int, settings: dict[str, Any] | None = None) -> list[Metric]:
    """Launch and memory metrics (one set of app launches serves both)."""
    from llamadesk.core import bundled

    compile_app()

    model_name = bundled.locate().path.name
    home = work / "home-launch"
    if settings is not None:
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    samples: list[dict[str, Any]] = []

    def once() -> float:
        samples.append(launch_once(home, work / "launch-events.jsonl", model_name))
        return 0.0

    # The warm-up launch creates the database and settings, as a first run does; the
    # measured ones are the everyday launch of an installed app.
    warm = warmups(1)
    repeat(max(min(runs, 3), 1) if not quick else 1, warm, once)
    kept = samples[warm:]
    metrics: list[Metric] = []
    if launch:
        idle = [s["events_s"]["window_idle"] for s in kept]
        first = [s["events_s"]["first_token"] for s in kept if "first_token" in s["events_s"]]
        loaded = [s["events_s"].get("model_loaded") for s in kept]
        metrics.append(Metric(
            "launch_to_window", "launch → window shown and idle", "s", Goal("<=", 0.4), idle,
            details={"window_shown_s": summarize([s["events_s"]["window_shown"]
                                                  for s in kept])},
            notes="process start → first turn of the event loop after show()"))
        if first:
            metrics.append(Metric(
                "launch_to_first_token", "launch → first token of the bundled model", "s",
                Goal("<=", 0.7), first,
                details={"model_loaded_s": summarize([x for x in loaded if x]),
                         # the app's CPU by its first token: on a busy machine the wall
                         # clock says little, this does
                         "cpu_to_first_token_s": summarize(
                             [s["cpu_s"]["first_token"] for s in kept
                              if "first_token" in s.get("cpu_s", {})])},
                notes="a message is sent as soon as the window is idle"))
        else:
            metrics.append(not_measured("launch_to_first_token",
                                        "launch → first token of the bundled model", "s",
                                        Goal("<=", 0.7), "no first-token event was recorded"))
    if memory:
        beyond = [(s["rss"] - model_bytes) / 1e6 for s in kept]
        metrics.append(Metric(
            "memory_beyond_model", "resident memory beyond the model file", "MB",
            Goal("<=", 150), beyond,
            details={"rss_mb": summarize([s["rss"] / 1e6 for s in kept]),
                     "uss_mb": summarize([s["uss"] / 1e6 for s in kept]),
                     "model_file_mb": round(model_bytes / 1e6, 1),
                     "smaps_last_run": kept[-1]["smaps"] if kept else None,
                     "threads": kept[-1]["threads"] if kept else None},
            notes="RSS of the app process after one reply, minus the model file's size"))
    return metrics
