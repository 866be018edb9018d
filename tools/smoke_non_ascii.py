"""Use LlamaDesk with everything under a folder whose name is not ASCII.

    python3 tools/smoke_non_ascii.py --model MODEL.gguf [--cli CMD ...] [--base DIR]
                                     [--threads N]

Many users' profile folders hold accents, Cyrillic or CJK characters, and a per-user
install puts the app, its bundled model and the data folder under them. This script
makes ``<base>/Željko Дмитрий 田中 folder`` (base: a temporary folder), sets
``LLAMADESK_HOME`` inside it, and drives the ``llamadesk`` command there:

1. ``--self-test`` (the bundled model, wherever the app is installed), and where that
   model is;
2. ``models import`` of a copy of MODEL placed under the folder (one byte changed, so
   it is not the bundled model's twin);
3. ``models download`` of another such copy from a loopback Hub (tests/support/
   hubserver.py, started here) into the folder;
4. ``chat`` with each of them, in words that are not ASCII either;
5. the messages are then searched for in the database (its full-text index).

The release workflow runs it against the installed app on Windows and macOS
(``--cli`` the installed executable); tests/e2e/test_non_ascii_paths.py runs it against
``python -m llamadesk``. Exits 0 when every step worked, else 1 with the failed step.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "Željko Дмитрий 田中 folder"
REPO = "test-org/Non-ASCII-GGUF"
FILE = "downloaded.Q4_1.gguf"
QUESTION = "Привет, Željko! Скажи 田中 hello."
PASSPHRASE = "пароль 田中"


class SmokeError(Exception):
    """A step failed; ``str()`` says which and why."""


def changed_copy(model: Path, dest: Path, flip_at: int) -> Path:
    """Copy ``model`` to ``dest`` with one byte of its last tensor changed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, dest)
    with dest.open("r+b") as fh:
        fh.seek(flip_at)
        byte = fh.read(1)
        fh.seek(flip_at)
        fh.write(bytes([byte[0] ^ 0x01]))
    return dest


def run(cli: list[str], *args: str, env: dict[str, str]) -> str:
    done = subprocess.run([*cli, *args], env=env, capture_output=True, timeout=600,
                          stdin=subprocess.DEVNULL, check=False)
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise SmokeError(f"`llamadesk {' '.join(args)}` exited {done.returncode}:\n{out}\n{err}")
    return out + err


def smoke(cli: list[str], model: Path, base: Path, threads: int = 0) -> list[str]:
    """Run every step; return what each did (raise SmokeError on the first failure).
    ``threads`` (when not 0) is written to the settings first: a shared machine runs
    llama.cpp's threads far slower than one."""
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from hubserver import HubServer

    folder = base / FOLDER
    home = folder / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env.update({"LLAMADESK_HOME": str(home), "PYTHONIOENCODING": "utf-8",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "HF_HOME": str(folder / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"})
    # No keychain here: the encrypted chat database's key is wrapped by a passphrase,
    # read from a file in the same non-ASCII folder.
    passphrase = folder / "passphrase Ω.txt"
    passphrase.parent.mkdir(parents=True, exist_ok=True)
    passphrase.write_text(PASSPHRASE + "\n", encoding="utf-8")
    env["LLAMADESK_PASSPHRASE_FILE"] = str(passphrase)
    if threads:
        settings = home / "config" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"hardware": {"n_threads": threads}}), encoding="utf-8")
    done = [run(cli, "--self-test", env=env).strip().splitlines()[-1]]
    bundled = run(cli, "models", "path", "smollm2-135m-instruct-q4_1", env=env).strip()
    done.append(f"the bundled model is at {bundled}")

    size = model.stat().st_size
    imported = changed_copy(model, folder / "мои модели 田中" / "Željko's model.gguf", size - 1)
    out = run(cli, "models", "import", str(imported), env=env)
    match = re.search(r"Imported .* as (\S+),", out)
    if match is None:
        raise SmokeError(f"the import did not say which id it gave:\n{out}")
    imported_id = match.group(1)
    done.append(f"imported {imported.name} as {imported_id}")

    served = changed_copy(model, base / "served.gguf", size - 2)
    with HubServer() as hub:
        hub.add_repo(REPO, {FILE: served})
        env["HF_ENDPOINT"] = hub.url
        out = run(cli, "models", "download", REPO, FILE, env=env)
        downloaded_id = re.search(r"as (\S+) \(", out)
        if downloaded_id is None:
            raise SmokeError(f"the download did not say which id it gave:\n{out}")
    done.append(f"downloaded {FILE} as {downloaded_id.group(1)} into {home}")

    for model_id in (imported_id, downloaded_id.group(1)):
        out = run(cli, "chat", "--new", "--model", model_id, "--max-tokens", "8", QUESTION,
                  env=env)
        done.append(f"chatted with {model_id}: {out.strip().splitlines()[0][:60]!r}")

    from llamadesk.core.db import connect
    from llamadesk.core.paths import app_paths
    from llamadesk.core.store_open import store_key

    database = home / "data" / "llamadesk.sqlite3"
    con = connect(database, store_key(app_paths(home), PASSPHRASE))
    try:
        hits = con.execute("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH ?",
                           ('"Željko"',)).fetchone()[0]
    finally:
        con.close()
    if hits != 2:
        raise SmokeError(f"searching the chats for Željko found {hits} messages, not 2")
    done.append(f"found both questions by searching {database}")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True,
                        help="a GGUF model to copy under the folder (the bundled one)")
    parser.add_argument("--cli", nargs="+", default=[sys.executable, "-m", "llamadesk"],
                        help="the llamadesk command (default: python -m llamadesk)")
    parser.add_argument("--base", type=Path, help="where to make the folder (default: temp)")
    parser.add_argument("--threads", type=int, default=0,
                        help="llama.cpp threads to set first (default: the app's choice)")
    args = parser.parse_args()
    base = args.base or Path(tempfile.mkdtemp(prefix="llamadesk-smoke-"))
    try:
        for line in smoke(args.cli, args.model, base, args.threads):
            print(f"ok: {line}")
    except SmokeError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
