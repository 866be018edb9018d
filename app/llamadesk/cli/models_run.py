"""The work of ``llamadesk models …`` (the parser and the entry point are in
``cli/models.py``, which imports this module only when a ``models`` command runs: it loads
the Hub client, which the window's start-up does not need)."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

from llamadesk.cli.errors import CliError, fail, os_reason
from llamadesk.core.catalog import CatalogEntry, CatalogError, Licence, ModelCatalog
from llamadesk.core.downloads import (
    DownloadCancelled,
    DownloadControl,
    Downloader,
    DownloadError,
    DownloadErrorKind,
    DownloadPaused,
    DownloadProgress,
    DownloadRequest,
)
from llamadesk.core.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from llamadesk.core.fit import FitEstimate, MemoryBudget, ModelShape
from llamadesk.core.hub import HubClient, HubError
from llamadesk.core.licences import (
    ACCEPTANCES_FILE,
    LLAMA2,
    LicenceAcceptances,
    acceptance_text,
)
from llamadesk.core.paths import AppPaths, app_paths
from llamadesk.core.registry import (
    LicenceRequiredError,
    ModelEntry,
    ModelRegistry,
    ModelSource,
    RegistryError,
)
from llamadesk.core.secrets import InvalidTokenError, SecretStore, TokenSource
from llamadesk.core.settings import load_settings
from llamadesk.core.units import format_bytes, format_duration, format_speed
from llamadesk.services.fit_check import memory_budget
from llamadesk.services.resolver import fit_estimate

log = logging.getLogger("llamadesk.cli.models")


@dataclass
class _Context:
    paths: AppPaths
    catalog: ModelCatalog
    registry: ModelRegistry
    secrets: SecretStore
    hub: HubClient
    licences: LicenceAcceptances
    downloader: Downloader
    out: TextIO
    err: TextIO


def _context(out: TextIO, err: TextIO) -> _Context:
    paths = app_paths().ensure()
    catalog = ModelCatalog.load()
    registry = ModelRegistry(paths, catalog)
    secrets = SecretStore()
    hub = HubClient(token=secrets.hf_token)
    licences = LicenceAcceptances(paths.config_dir / ACCEPTANCES_FILE)
    downloader = Downloader(paths, hub, registry, catalog=catalog, licences=licences)
    return _Context(paths, catalog, registry, secrets, hub, licences, downloader, out, err)


def run_models(args: argparse.Namespace, out: TextIO | None = None,
               err: TextIO | None = None) -> int:
    """Run a ``models`` subcommand; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        ctx = _context(out, err)
        command: Callable[[_Context, argparse.Namespace], int] = _COMMANDS[args.models_command]
        return command(ctx, args)
    except (CliError, CatalogError, RegistryError, HubError, DownloadError) as exc:
        return fail(exc, err, log=log, during=f"models {args.models_command}")
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        return EXIT_FAILED
    except OSError as exc:
        return fail(os_reason(exc), err, log=log, during=f"models {args.models_command}")


# -- listing ---------------------------------------------------------------------------
def _table(rows: list[list[str]], out: TextIO) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
        print("  ".join(cells).rstrip(), file=out)


def _list(ctx: _Context, args: argparse.Namespace) -> int:
    rows = [["ID", "QUANT", "SIZE", "SOURCE", "NAME"]]
    for entry in ctx.registry.models():
        missing = "" if entry.available else "  (file missing)"
        rows.append([entry.id, entry.quantisation or "?", format_bytes(entry.size),
                     str(entry.source), entry.name + missing])
    _table(rows, ctx.out)
    return EXIT_OK


def _fit_for(ctx: _Context, size: int | None, entry: CatalogEntry | None,
             budget: MemoryBudget) -> FitEstimate | None:
    if size is None:
        return None
    return fit_estimate(load_settings(ctx.paths.settings_file), size,
                        ModelShape.from_hint(entry.architecture) if entry else None,
                        entry.context_length if entry else None, budget=budget)


def _catalog(ctx: _Context, args: argparse.Namespace) -> int:
    budget = memory_budget()
    for entry in ctx.catalog.entries:
        lic = entry.licence.name + (" (accept before download)"
                                    if ctx.licences.needs_acceptance(entry.licence) else "")
        print(f"{entry.id}  —  {entry.name} [{entry.family}], licence: {lic}", file=ctx.out)
        for item in entry.files:
            fit = _fit_for(ctx, item.size, entry, budget)
            label = fit.label.value if fit else "?"
            default = " (default)" if item.quant == entry.default_quant else ""
            print(f"    {entry.id}:{item.quant:<8} ~{format_bytes(item.size):>9}  {label}"
                  f"{default}", file=ctx.out)
    return EXIT_OK


def _search(ctx: _Context, args: argparse.Namespace) -> int:
    repos = ctx.hub.search(args.query, limit=args.limit)
    if not repos:
        print(f"No GGUF models on the Hub match {args.query!r}.", file=ctx.out)
        return EXIT_OK
    rows = [["REPO", "DOWNLOADS", "LIKES", ""]]
    rows += [[r.id, f"{r.downloads:,}", f"{r.likes:,}", "gated" if r.gated else ""]
             for r in repos]
    _table(rows, ctx.out)
    return EXIT_OK


def _files(ctx: _Context, args: argparse.Namespace) -> int:
    choices = ctx.hub.gguf_choices(args.repo)
    if not choices:
        print(f"{args.repo} holds no GGUF files.", file=ctx.out)
        return EXIT_OK
    entry = ctx.catalog.for_repo(args.repo)
    budget = memory_budget()
    rows = [["FILE", "QUANT", "SIZE", "FIT"]]
    for choice in choices:
        size = format_bytes(choice.size) if choice.size is not None else "?"
        if choice.refusal:
            fit_text = f"not downloadable: split into {len(choice.files)} files"
        else:
            fit = _fit_for(ctx, choice.size, entry, budget)
            fit_text = fit.label.value if fit else "?"
        rows.append([choice.name, choice.quant or "?", size, fit_text])
    _table(rows, ctx.out)
    return EXIT_OK


# -- downloading -------------------------------------------------------------------------
class _TerminalProgress:
    """A progress line: rewritten in place on a terminal, every 10 % otherwise."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self.stream = stream
        self.tty = stream.isatty()
        self._last_decile = -1

    def __call__(self, p: DownloadProgress) -> None:
        pct = int(p.fraction * 100)
        line = (f"{self.name}: {pct:3d}%  {format_bytes(p.done)} of {format_bytes(p.total)}  "
                f"{format_speed(p.speed)}  {format_duration(p.eta)} left")
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
            self.stream.flush()
        elif pct // 10 != self._last_decile:
            self._last_decile = pct // 10
            print(line, file=self.stream, flush=True)

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _request_for(ctx: _Context, args: argparse.Namespace) -> DownloadRequest:
    if args.file:
        return DownloadRequest(args.target, args.file, args.revision)
    if "/" in args.target:
        raise CliError(f"Which file of {args.target}? Use: llamadesk models download "
                       f"{args.target} FILE (list them with: llamadesk models files "
                       f"{args.target}).")
    entry, item = ctx.catalog.resolve(args.target)
    if entry.bundled:
        shipped = ctx.registry.bundled_entry()
        if shipped is not None and shipped.filename == item.file:
            raise CliError(f"{entry.name} ({item.quant}) ships with LlamaDesk; there is "
                           "nothing to download.")
    return DownloadRequest(entry.repo, item.file, entry.revision, entry.id)


def _confirm_licence(ctx: _Context, licence: Licence | None, accept: bool) -> None:
    if licence is None or not ctx.licences.needs_acceptance(licence):
        return
    print(acceptance_text(licence), file=ctx.out)
    if not accept:
        if not sys.stdin.isatty():
            raise CliError(f"{licence.name} must be accepted first: read it, then "
                           "run the command again with --accept-licence.")
        answer = input("Do you accept these terms? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise CliError("Licence not accepted; nothing was downloaded.")
    ctx.licences.accept(licence)
    print(f"Accepted the {licence.name}.", file=ctx.out)


def _download(ctx: _Context, args: argparse.Namespace) -> int:
    request = _request_for(ctx, args)
    entry = ctx.downloader.catalog_entry(request)
    if entry is not None:
        _confirm_licence(ctx, entry.licence, args.accept_licence)
    try:
        return _fetch(ctx, request)
    except DownloadError as exc:
        if exc.kind != DownloadErrorKind.LICENCE:
            raise
        # A model found by search that the Hub's metadata, or the file's own, names a
        # Llama 2 derivative (catalog models were asked for above, so this is the only
        # licence refused here). Verified bytes are kept: accepting finishes the download.
        _confirm_licence(ctx, LLAMA2, args.accept_licence)
        return _fetch(ctx, request)


def _fetch(ctx: _Context, request: DownloadRequest) -> int:
    partial = next((p for p in ctx.downloader.partials() if p.request.key == request.key), None)
    if partial is not None and partial.done:
        print(f"Resuming {request.filename} from {format_bytes(partial.done)} of "
              f"{format_bytes(partial.total)}.", file=ctx.out)
    control = DownloadControl()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        control.pause_from_signal()  # no lock inside a signal handler

    previous = signal.signal(signal.SIGINT, on_interrupt)
    progress = _TerminalProgress(request.filename, ctx.out)
    started = time.monotonic()
    try:
        model = ctx.downloader.download(request, progress, control)
    except DownloadPaused:
        progress.end()
        print(f"Paused. Run the same command again to resume {request.filename}.",
              file=ctx.err)
        return EXIT_INTERRUPTED
    except DownloadCancelled:  # pragma: no cover - the terminal only pauses
        progress.end()
        return EXIT_INTERRUPTED
    except DownloadError as exc:
        progress.end()
        if exc.kind == DownloadErrorKind.GATED:
            raise CliError(f"{exc} Store a token with `llamadesk models token set`.") \
                from exc
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    progress.end()
    print(f"Downloaded and verified {model.name} as {model.id} "
          f"({format_bytes(model.size)} in {format_duration(time.monotonic() - started)}).",
          file=ctx.out)
    return EXIT_OK


# -- local files -----------------------------------------------------------------------------
def _import(ctx: _Context, args: argparse.Namespace) -> int:
    def register() -> ModelEntry:
        return ctx.registry.import_file(args.path, link=args.link, name=args.name,
                                        chat_format=args.chat_format)

    try:
        entry = register()
    except LicenceRequiredError as exc:  # the file names itself a Llama 2 derivative
        _confirm_licence(ctx, exc.licence, args.accept_licence)
        entry = register()
    how = "linked (used where it is)" if args.link else "copied into the models folder"
    print(f"Imported {entry.name} as {entry.id}, {how}: {entry.quantisation or '?'}, "
          f"{format_bytes(entry.size)}, context {entry.context_length or '?'}.", file=ctx.out)
    return EXIT_OK


def _remove(ctx: _Context, args: argparse.Namespace) -> int:
    entry = ctx.registry.remove(args.id, delete_file=not args.keep_file)
    kept = (" (its file was left where it is)"
            if args.keep_file or entry.source == ModelSource.LINKED else "")
    print(f"Removed {entry.name}{kept}.", file=ctx.out)
    return EXIT_OK


def _path(ctx: _Context, args: argparse.Namespace) -> int:
    entry = ctx.registry.get(args.id)
    if entry is None:
        raise CliError(f"No installed model {args.id!r}.")
    print(entry.path, file=ctx.out)
    return EXIT_OK


def _token(ctx: _Context, args: argparse.Namespace) -> int:
    if args.action == "status":
        source = ctx.secrets.hf_token_source()
        if source == TokenSource.NONE:
            print("No Hugging Face token (only gated models need one).", file=ctx.out)
        else:
            print(f"A Hugging Face token is set, from {source.value}.", file=ctx.out)
        return EXIT_OK
    if args.action == "clear":
        ctx.secrets.clear_hf_token()
        print("Forgot the stored Hugging Face token.", file=ctx.out)
        return EXIT_OK
    if sys.stdin.isatty():
        token = getpass.getpass("Hugging Face token (input hidden): ")
    else:
        token = sys.stdin.readline()
    try:
        result = ctx.secrets.set_hf_token(token)
    except InvalidTokenError as exc:
        raise CliError(f"Not a token: {exc}.") from exc
    print(result.message, file=ctx.out)
    if not result.persisted:
        print("A token kept for this command only is of no use to the next one: set HF_TOKEN "
              "in the environment instead.", file=ctx.out)
    return EXIT_OK


def _chat_format(ctx: _Context, args: argparse.Namespace) -> int:
    if args.format is not None:
        entry = ctx.registry.set_chat_format(args.id, args.format)
    else:
        found = ctx.registry.get(args.id)
        if found is None:
            raise CliError(f"no installed model {args.id!r} (see `llamadesk models list`)")
        entry = found
    print(f"{entry.id}: {entry.chat_format} (used when the file has no usable template)",
          file=ctx.out)
    return EXIT_OK


_COMMANDS: dict[str, Callable[[_Context, argparse.Namespace], int]] = {
    "list": _list, "catalog": _catalog, "search": _search, "files": _files,
    "download": _download, "import": _import, "remove": _remove, "path": _path,
    "token": _token, "chat-format": _chat_format,
}

__all__ = ["run_models"]
