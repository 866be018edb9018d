"""``llamadesk connections``: remote OpenAI-compatible servers to chat through.

    llamadesk connections add NAME --url URL [--api-key-prompt] [--disabled]
    llamadesk connections list [--check]
    llamadesk connections enable|disable NAME
    llamadesk connections remove NAME

A connection is kept in the settings file; its API key only in the system keyring
(read from the terminal without echo, or from the first line of stdin). ``add`` checks
the server at once and says what it found or why not; the connection is kept either
way, so a server that is down today can be added for tomorrow.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from llamadesk.cli.errors import CliError, fail
from llamadesk.core import connections as remote
from llamadesk.core.connections import Connection, InvalidConnectionError
from llamadesk.core.exit_codes import EXIT_FAILED, EXIT_OK
from llamadesk.core.paths import app_paths
from llamadesk.core.secrets import InvalidTokenError, SecretStore
from llamadesk.core.settings import AppSettings

if TYPE_CHECKING:
    from llamadesk.services.settings import SettingsService

def add_connections_parser(subparsers: Any) -> None:
    """Add the ``connections`` command and its subcommands to the ``llamadesk`` parser."""
    parser = subparsers.add_parser(
        "connections", help="remote OpenAI-compatible servers (vLLM, llama.cpp, Ollama)",
        description="Servers to chat through. Their models are NAME/MODEL, e.g. "
                    "`llamadesk chat --model gpu-box/llama-3-70b \"...\"`.")
    sub = parser.add_subparsers(dest="connections_command", metavar="COMMAND", required=True)
    add = sub.add_parser("add", help="add (or change) a connection and check it")
    add.add_argument("name")
    add.add_argument("--url", required=True, help="the server's base URL, e.g. "
                     "http://gpu-box:8000/v1")
    add.add_argument("--api-key-prompt", action="store_true",
                     help="ask for an API key (kept only in the system keyring)")
    add.add_argument("--disabled", action="store_true", help="add it turned off")
    listing = sub.add_parser("list", help="the connections, with whether each is on")
    listing.add_argument("--check", action="store_true",
                         help="ask each enabled server for its models")
    for action in ("enable", "disable", "remove"):
        sub.add_parser(action, help=f"{action} a connection").add_argument("name")


def _settings() -> tuple[AppSettings, SettingsService]:
    """The stored settings and their one owner, which saves them (see services/settings;
    imported here, not at the top, so that parsing the command line needs no Qt)."""
    from llamadesk.services.settings import SettingsService

    service = SettingsService.load(app_paths().settings_file)
    return service.current, service


def _save(settings: AppSettings, service: SettingsService) -> None:
    from llamadesk.services.settings import SettingsSaveError

    try:
        service.update(settings)
    except SettingsSaveError as exc:
        cause = exc.__cause__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else cause
        raise CliError(f"cannot write the settings to "
                       f"{app_paths().settings_file}: {reason}") from exc


def _read_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("API key (input hidden): ")
    return sys.stdin.readline()


def _check(connection: Connection, secrets: SecretStore, settings: AppSettings,
           out: TextIO) -> bool:
    from llamadesk.services.remote import check_connection

    result = check_connection(connection, secrets.api_key(connection.name), settings.remote)
    print(("ok: " if result.ok else "failed: ") + result.message, file=out)
    return result.ok


def _add(args: argparse.Namespace, secrets: SecretStore, out: TextIO) -> int:
    settings, service = _settings()
    try:
        connections = remote.added(settings.connections,
                                   Connection(args.name, args.url, not args.disabled))
    except InvalidConnectionError as exc:
        raise CliError(str(exc)) from exc
    connection = remote.find(connections, args.name.strip())
    assert connection is not None
    if args.api_key_prompt:
        try:
            saved = secrets.set_api_key(connection.name, _read_key())
        except InvalidTokenError as exc:
            raise CliError(f"Not a key: {exc}.") from exc
        print(saved.message, file=out)
    settings = replace(settings, connections=connections)
    _save(settings, service)
    print(f"Added {connection.name}: {connection.base_url}"
          f"{'' if connection.enabled else ' (turned off)'}", file=out)
    if not connection.enabled:
        return EXIT_OK
    return EXIT_OK if _check(connection, secrets, settings, out) else EXIT_FAILED


def _list(args: argparse.Namespace, secrets: SecretStore, out: TextIO) -> int:
    settings, _service = _settings()
    if not settings.connections:
        print("No connections: every chat stays on this computer.", file=out)
        return EXIT_OK
    failed = False
    for connection in settings.connections:
        state = "on" if connection.enabled else "off"
        key = "key in keyring" if secrets.api_key(connection.name) else "no key"
        print(f"{connection.name}\t{connection.base_url}\t{state}\t{key}", file=out)
        if args.check and connection.enabled:
            failed |= not _check(connection, secrets, settings, out)
    return EXIT_FAILED if failed else EXIT_OK


def _set_enabled(args: argparse.Namespace, enabled: bool, out: TextIO) -> int:
    settings, service = _settings()
    connection = remote.find(settings.connections, args.name)
    if connection is None:
        raise CliError(f"there is no connection {args.name!r} "
                       "(`llamadesk connections list`)")
    settings = replace(settings, connections=remote.added(
        settings.connections, replace(connection, enabled=enabled)))
    _save(settings, service)
    print(f"{connection.name} is {'on' if enabled else 'off'}.", file=out)
    return EXIT_OK


def _remove(args: argparse.Namespace, secrets: SecretStore, out: TextIO) -> int:
    settings, service = _settings()
    try:
        connections = remote.removed(settings.connections, args.name)
    except KeyError as exc:
        raise CliError(f"there is no connection {args.name!r} "
                       "(`llamadesk connections list`)") from exc
    _save(replace(settings, connections=connections), service)
    secrets.clear_api_key(args.name)
    print(f"Removed {args.name} and its key.", file=out)
    return EXIT_OK


def run_connections(args: argparse.Namespace, secrets: SecretStore | None = None,
                    out: TextIO | None = None) -> int:
    """Run a ``llamadesk connections`` subcommand; errors go to stderr as one line."""
    secrets = secrets or SecretStore()
    out = out or sys.stdout
    command = args.connections_command
    try:
        if command == "add":
            return _add(args, secrets, out)
        if command == "list":
            return _list(args, secrets, out)
        if command in ("enable", "disable"):
            return _set_enabled(args, command == "enable", out)
        return _remove(args, secrets, out)
    except CliError as exc:
        return fail(exc)
