"""Where the store key lives: the OS keychain, or wrapped by a passphrase in a file.

The key is 256 random bits (``db.new_key``). By default it is kept only in the
keychain (keyring: service "LlamaDesk", user "store-key", as hex). With a passphrase it
leaves the keychain and is kept wrapped in ``llamadesk.protection.json`` beside the
database: scrypt (memory-hard, from the standard library) turns the passphrase into a
256-bit wrapping key, and AES-GCM (``cryptography``) encrypts and authenticates the store
key with it, so a wrong passphrase is told apart from a right one without ever opening
the database. Changing the passphrase rewraps the same store key (one atomic file
replace), so the database is never rewritten. The same file records an explicit choice
to keep the store unencrypted. Nothing here logs or formats a key or a passphrase.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import keyring
import keyring.errors

from llamadesk.core.db import KEY_BYTES
from llamadesk.core.secrets import SERVICE, SecretStore

log = logging.getLogger(__name__)

STORE_KEY_USER = "store-key"
PROTECTION_FILE = "llamadesk.protection.json"
PASSPHRASE_FILE_ENV = "LLAMADESK_PASSPHRASE_FILE"
_AAD = b"LlamaDesk store key v1"
# scrypt at N=2**17, r=8: 128 MiB and a fraction of a second per unwrap (OWASP's
# recommended minimum); the parameters are stored, so a later version can raise them.
_SCRYPT = {"n": 2**17, "r": 8, "p": 1}


class Protection(StrEnum):
    """How the store key is kept."""

    KEYCHAIN = "keychain"
    PASSPHRASE = "passphrase"
    NONE = "none"  # the user chose an unencrypted store


class KeyStoreError(Exception):
    """The key cannot be kept or read; ``str()`` says why in words."""


class BadPassphraseError(KeyStoreError):
    """The passphrase does not unwrap the key (nothing was changed)."""


@dataclass(frozen=True)
class WrappedKey:
    """A store key encrypted under a passphrase (the protection file's content)."""

    salt: bytes
    nonce: bytes
    wrapped: bytes
    n: int = _SCRYPT["n"]
    r: int = _SCRYPT["r"]
    p: int = _SCRYPT["p"]

    def __repr__(self) -> str:
        return f"WrappedKey(n={self.n}, r={self.r}, p={self.p})"


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * r * n + 2**20, dklen=32)


def wrap_key(key: bytes, passphrase: str) -> WrappedKey:
    """Encrypt ``key`` under ``passphrase`` (a fresh salt and nonce each time)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only when used

    if not passphrase:
        raise KeyStoreError("The passphrase is empty.")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    kek = _kek(passphrase, salt, **_SCRYPT)
    return WrappedKey(salt, nonce, AESGCM(kek).encrypt(nonce, key, _AAD))


def unwrap_key(wrapped: WrappedKey, passphrase: str) -> bytes:
    """The store key, or ``BadPassphraseError``."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kek = _kek(passphrase, wrapped.salt, wrapped.n, wrapped.r, wrapped.p)
    try:
        key = AESGCM(kek).decrypt(wrapped.nonce, wrapped.wrapped, _AAD)
    except InvalidTag:
        raise BadPassphraseError("The passphrase is wrong.") from None
    if len(key) != KEY_BYTES:
        raise KeyStoreError("The protection file holds no valid key.")
    return key


class KeyStore:
    """The store key of one data folder: its protection and its keychain entry."""

    def __init__(self, data_dir: Path, secrets_: SecretStore | None = None) -> None:
        self.data_dir = data_dir
        self.protection_file = data_dir / PROTECTION_FILE
        self._secrets = secrets_ or SecretStore()

    def __repr__(self) -> str:
        return f"KeyStore({self.data_dir})"

    # -- the protection file ------------------------------------------------------------
    def protection(self) -> Protection:
        """How the key is kept (no protection file: the keychain)."""
        data = self._read()
        return Protection(str(data["protection"])) if data else Protection.KEYCHAIN

    def wrapped(self) -> WrappedKey:
        """The passphrase-wrapped key of the protection file."""
        data = self._read()
        if not data or data.get("protection") != Protection.PASSPHRASE:
            raise KeyStoreError("No passphrase protects this store.")
        try:
            salt, nonce, wrapped = (base64.b64decode(str(data[k]))
                                    for k in ("salt", "nonce", "key"))
            return WrappedKey(salt, nonce, wrapped, n=int(str(data["n"])),
                              r=int(str(data["r"])), p=int(str(data["p"])))
        except (KeyError, ValueError, TypeError) as exc:
            raise KeyStoreError(f"The protection file {self.protection_file} is damaged "
                                f"({type(exc).__name__}).") from exc

    def _read(self) -> dict[str, object] | None:
        try:
            text = self.protection_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyStoreError(f"Cannot read {self.protection_file}: {exc.strerror}.") from exc
        try:
            data = json.loads(text)
            Protection(data["protection"])
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"The protection file {self.protection_file} is damaged "
                                f"({type(exc).__name__}).") from exc
        return data if isinstance(data, dict) else None

    def _write(self, data: dict[str, object]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.protection_file.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.protection_file)
        fsync_dir(self.data_dir)

    def set_passphrase(self, key: bytes, passphrase: str) -> None:
        """Keep ``key`` wrapped by ``passphrase`` (and no longer in the keychain)."""
        w = wrap_key(key, passphrase)
        self._write({"protection": str(Protection.PASSPHRASE), "kdf": "scrypt",
                     "n": w.n, "r": w.r, "p": w.p, "aead": "AES-256-GCM",
                     **{k: base64.b64encode(v).decode("ascii")
                        for k, v in (("salt", w.salt), ("nonce", w.nonce),
                                     ("key", w.wrapped))}})
        self.forget_keychain_key()
        log.info("the store key is now protected by a passphrase")

    def unlock(self, passphrase: str) -> bytes:
        """The key the passphrase protects (``BadPassphraseError`` if it does not fit)."""
        return unwrap_key(self.wrapped(), passphrase)

    def choose_unencrypted(self) -> None:
        """Remember the user's explicit choice of an unencrypted store."""
        self._write({"protection": str(Protection.NONE)})
        log.info("the user chose to keep the chat database unencrypted")

    def use_keychain(self, key: bytes) -> None:
        """Keep ``key`` in the keychain only (turns a passphrase off)."""
        self.save_keychain_key(key)
        self.protection_file.unlink(missing_ok=True)
        fsync_dir(self.data_dir)
        log.info("the store key is now kept in the system keychain")

    # -- the keychain ---------------------------------------------------------------------
    def keychain_usable(self) -> bool:
        """Whether a keyring backend that keeps secrets is available."""
        return self._secrets.keyring_usable()

    def keychain_key(self) -> bytes | None:
        """The key in the keychain, or None (no entry, or no usable keychain)."""
        if not self.keychain_usable():
            return None
        try:
            text = keyring.get_password(SERVICE, STORE_KEY_USER)
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"The system keychain refused to give the store key "
                                f"({type(exc).__name__}).") from exc
        if not text:
            return None
        return parse_key(text)

    def save_keychain_key(self, key: bytes) -> None:
        """Put ``key`` in the keychain (``KeyStoreError`` if it refuses)."""
        if not self.keychain_usable():
            raise KeyStoreError("No system keychain is available.")
        try:
            keyring.set_password(SERVICE, STORE_KEY_USER, key.hex())
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"The system keychain refused the store key "
                                f"({type(exc).__name__}).") from exc

    def forget_keychain_key(self) -> None:
        """Remove the keychain entry, if any."""
        if not self.keychain_usable():
            return
        try:
            keyring.delete_password(SERVICE, STORE_KEY_USER)
        except keyring.errors.PasswordDeleteError:
            pass  # nothing was stored
        except keyring.errors.KeyringError as exc:
            log.warning("cannot remove the store key from the keychain (%s)",
                        type(exc).__name__)


def parse_key(text: str) -> bytes:
    """A key from its hex form (what ``store export-key`` shows)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyStoreError("That is not a store key (64 hexadecimal digits).") from None
    if len(key) != KEY_BYTES:
        raise KeyStoreError("That is not a store key (64 hexadecimal digits).")
    return key


def passphrase_from_env(environ: dict[str, str] | None = None) -> str | None:
    """The passphrase in the file named by ``LLAMADESK_PASSPHRASE_FILE`` (first line)."""
    env = environ if environ is not None else dict(os.environ)
    name = env.get(PASSPHRASE_FILE_ENV)
    if not name:
        return None
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyStoreError(f"Cannot read the passphrase file named by "
                            f"{PASSPHRASE_FILE_ENV}: {exc.strerror}.") from exc
    lines = text.splitlines()
    return lines[0] if lines and lines[0] else None


def fsync_dir(folder: Path) -> None:
    """Make a rename or an unlink in ``folder`` durable (no-op where unsupported)."""
    if os.name == "nt":
        return  # Windows cannot open a folder for fsync; NTFS journals renames
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
