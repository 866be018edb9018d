"""Kill a chatting LlamaDesk process at random moments, many times, and check the database.

    python3 tools/stress_kill.py [--rounds 100] [--seed N] [--max-delay 2.0] [--keep DIR]

The long variant of tests/e2e/test_power_loss.py (which does 20 kills in CI): each round
starts a child that chats through the real send path (ChatController, the bundled model,
the real SQLite store), SIGKILLs it after a random delay, and checks that the database
passes ``PRAGMA integrity_check`` and holds every message whose commit the child had
announced. Exits 1 and lists the problems if any round found one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from kill_harness import Round, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--max-delay", type=float, default=2.0,
                        help="longest time a child chats before it is killed (s)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="llamadesk-stress-kill-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"{args.rounds} rounds, seed {args.seed}, in {folder}")

    def report(i: int, round_: Round, problems: list[str]) -> None:
        state = "; ".join(problems) if problems else "ok"
        print(f"round {i + 1:3d}: killed after {round_.delay:.2f} s, "
              f"{len(round_.committed)} commits announced: {state}", flush=True)

    rounds, problems = run(folder / "chats.sqlite3", folder / "home", args.rounds,
                           args.seed, args.max_delay, report)
    committed = sum(len(r.committed) for r in rounds)
    print(f"{len(rounds)} kills, {committed} committed messages checked, "
          f"{len(problems)} problems, {time.monotonic() - started:.0f} s")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
