"""LlamaDesk: private, offline chat with local language models."""

from importlib import metadata

try:
    __version__ = metadata.version("llamadesk")
except metadata.PackageNotFoundError:  # running from a source tree or a frozen bundle
    __version__ = "0.1.0"

APP_NAME = "LlamaDesk"
