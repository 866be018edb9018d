"""Child process of tests/e2e/test_encrypt_kill.py: open the store of $LLAMADESK_HOME as
the app does, which encrypts its plaintext database, unless killed first. The key comes
from the passphrase file in $LLAMADESK_PASSPHRASE_FILE (no keychain in a child)."""

from __future__ import annotations

import sys

from llamadesk.core.paths import app_paths
from llamadesk.core.store_migrate import recover
from llamadesk.core.store_open import open_with_key, store_key


def main() -> int:
    paths = app_paths()
    recover(paths.database)
    key = store_key(paths)
    print("start", flush=True)  # the key is kept: from here on it is the migration
    open_with_key(paths, key).close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
