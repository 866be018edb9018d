"""``llamadesk models …``: the model manager from the terminal.

    llamadesk models list                       installed models
    llamadesk models catalog                    curated models, with fit labels
    llamadesk models search QUERY               GGUF repos on the Hub
    llamadesk models files REPO                 a repo's GGUF files, with fit labels
    llamadesk models download REPO FILE         download, verify and register a file
    llamadesk models download ID[:QUANT]        the same for a catalog model
    llamadesk models import PATH [--link]       validate and register a local .gguf
    llamadesk models remove ID                  forget a model (and delete its file)
    llamadesk models path ID                    print where a model's file is
    llamadesk models chat-format ID [FORMAT]    the format for files without a template
    llamadesk models token set|clear|status     the Hugging Face token (kept in the keyring)

Failures print one line on stderr and exit 1; Ctrl+C during a download pauses it (exit
130) and running the same command again resumes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from llamadesk.core.chat_formats import FALLBACK_FORMATS


def add_models_parser(subparsers: Any) -> None:
    """Add the ``models`` command and its subcommands to the ``llamadesk`` parser."""
    models = subparsers.add_parser("models", help="list, search, download, import and remove "
                                   "models", description="The model manager.")
    sub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    sub.add_parser("list", help="installed models")
    sub.add_parser("catalog", help="curated models, with whether they fit this machine")
    search = sub.add_parser("search", help="search the Hugging Face Hub for GGUF models")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=20)
    files = sub.add_parser("files", help="a Hub repo's GGUF files, with quantisation and fit")
    files.add_argument("repo")
    download = sub.add_parser("download", help="download, verify and register a model",
                              description="Download REPO FILE, or a catalog model by "
                              "ID[:QUANT]. Interrupted downloads resume when run again.")
    download.add_argument("target", metavar="REPO|ID[:QUANT]")
    download.add_argument("file", nargs="?", metavar="FILE")
    download.add_argument("--revision", default="main", help="branch, tag or commit")
    download.add_argument("--accept-licence", action="store_true",
                          help="accept the model's licence without asking (for scripts)")
    imp = sub.add_parser("import", help="validate and register a local .gguf file")
    imp.add_argument("path", type=Path)
    imp.add_argument("--link", action="store_true",
                     help="use the file where it is instead of copying it")
    imp.add_argument("--name", help="the name to show")
    imp.add_argument("--chat-format", help="fallback chat format for files without a template")
    imp.add_argument("--accept-licence", action="store_true",
                     help="accept the model's licence without asking (for scripts)")
    remove = sub.add_parser("remove", help="forget a model and delete its downloaded file")
    remove.add_argument("id")
    remove.add_argument("--keep-file", action="store_true", help="only forget it")
    fmt = sub.add_parser("chat-format",
                         help="show or set the chat format used when a model's file has no "
                              "usable template of its own")
    fmt.add_argument("id")
    fmt.add_argument("format", nargs="?", choices=sorted(FALLBACK_FORMATS))
    path = sub.add_parser("path", help="print the path of a model's file")
    path.add_argument("id")
    token = sub.add_parser("token", help="the Hugging Face token for gated models")
    token.add_argument("action", choices=["set", "clear", "status"])


def run_models(args: Any, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run a ``models`` subcommand; returns the exit status. The work is in
    ``cli/models_run.py``, imported here: the Hub client loads only for these commands."""
    from llamadesk.cli.models_run import run_models as run

    return run(args, out, err)


__all__ = ["add_models_parser", "run_models"]
