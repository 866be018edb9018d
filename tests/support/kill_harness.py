"""Kill a chatting process at random moments and check what its database kept.

Used by tests/e2e/test_power_loss.py (20 kills) and tools/stress_kill.py (100). Each
round starts ``chat_until_killed.py`` on the same database (a child forked by one
``--fork-each`` process, which imports Python, Qt and llama.cpp once), waits until it
has loaded the model, lets it chat for a random time, and SIGKILLs it: no handler runs,
no buffer is flushed, exactly what a crash does to the process (an OS crash or power
cut also loses what the OS had not written; ``synchronous=FULL`` covers that part).
After each kill the database must pass ``PRAGMA integrity_check`` and hold every
message whose commit the child had announced, with the same role and text.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from crypt_fixtures import open_any

CHILD = Path(__file__).with_name("chat_until_killed.py")


@dataclass(frozen=True)
class Committed:
    """A message the child said was committed."""

    id: int
    role: str
    sha1: str


@dataclass
class Round:
    """What one kill left."""

    delay: float
    committed: list[Committed] = field(default_factory=list)
    ready: bool = False
    exit_code: int | None = None
    errors: list[str] = field(default_factory=list)


class Forker:
    """``chat_until_killed.py --fork-each``: one process that imports Python, Qt and
    llama.cpp once and forks each round's chatting child (a process of its own that
    opens the store and loads the model from nothing, as a fresh start does)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), "--fork-each"], env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def start(self, database: Path, marker: str) -> None:
        """Ask for a child chatting on ``database``."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{database}\t{marker}\n".encode())
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # its loop ends; no child is left by then
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Forker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class _Child:
    """What the forker said of the round's child."""

    pid: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)


def _read(stream: object, round_: Round, ready: threading.Event, child: _Child) -> None:
    for raw in stream:  # type: ignore[attr-defined]
        line = raw.decode("utf-8", "replace").strip()
        if line == "ready":
            round_.ready = True
            ready.set()
        elif line.startswith("committed "):
            _, ident, role, sha1 = line.split(" ", 3)
            round_.committed.append(Committed(int(ident), role, sha1))
        elif line.startswith("failed "):
            round_.errors.append(line)
        elif line.startswith("pid "):
            child.pid = int(line.split()[1])
        elif line.startswith("exit "):
            round_.exit_code = int(line.split()[1])
            break  # the round's child has ended; the next round reads on
    ready.set()  # the child ended: nobody should wait for "ready" any more
    child.ended.set()


def kill_round(database: Path, env: dict[str, str], delay: float,
               start_timeout: float = 120.0, marker: str = "",
               forker: Forker | None = None) -> Round:
    """Run a child until ``delay`` seconds after it is ready, then SIGKILL it (with
    ``marker``: on the app's encrypted database, see chat_until_killed.py). The child
    comes from ``forker``, or from a forker of its own."""
    if forker is None:
        with Forker(env) as own:
            return kill_round(database, env, delay, start_timeout, marker, own)
    round_ = Round(delay)
    ready = threading.Event()
    child = _Child()
    assert forker.process.stdout is not None
    reader = threading.Thread(target=_read, args=(forker.process.stdout, round_, ready, child),
                              daemon=True)
    reader.start()
    forker.start(database, marker)
    try:
        if not ready.wait(start_timeout) or not round_.ready:
            round_.errors.append("the child never became ready")
        else:
            time.sleep(delay)  # a random moment: mid-generation, mid-commit, anywhere
    finally:
        if not child.ended.is_set() and child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        if not child.ended.wait(60):
            round_.errors.append("the forker never reported the child's end")
        reader.join(timeout=10)
    return round_


def check_database(database: Path, committed: list[Committed]) -> list[str]:
    """What is wrong with the database after a kill ([] when nothing is)."""
    import hashlib

    problems = []
    con = open_any(database)
    try:
        verdict = con.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            problems.append(f"integrity_check: {verdict}")
        for item in committed:
            row = con.execute("SELECT role, content FROM messages WHERE id = ?",
                              (item.id,)).fetchone()
            if row is None:
                problems.append(f"message {item.id} ({item.role}) was committed but is gone")
                continue
            digest = hashlib.sha1(row[1].encode("utf-8")).hexdigest()
            if row[0] != item.role or digest != item.sha1:
                problems.append(f"message {item.id} changed after its commit")
    finally:
        con.close()
    return problems


def child_env(home: Path) -> dict[str, str]:
    """The child's environment: its own LLAMADESK_HOME, no Qt display needed."""
    env = dict(os.environ)
    env.update({"LLAMADESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"})
    return env


def run(database: Path, home: Path, rounds: int, seed: int, max_delay: float = 2.0,
        report: object = None) -> tuple[list[Round], list[str]]:
    """``rounds`` kills on one database; returns the rounds and every problem found."""
    rng = random.Random(seed)
    env = child_env(home)
    all_committed: list[Committed] = []
    done: list[Round] = []
    problems: list[str] = []
    with Forker(env) as forker:
        for i in range(rounds):
            round_ = kill_round(database, env, rng.uniform(0.0, max_delay), forker=forker)
            done.append(round_)
            all_committed += round_.committed
            found = [f"round {i + 1}: {p}" for p in (
                round_.errors + check_database(database, all_committed))]
            problems += found
            if report is not None:
                report(i, round_, found)  # type: ignore[operator]
    return done, problems
