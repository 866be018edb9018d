"""LlamaDesk: private, offline chat with local language models."""

from llamadesk.core.dist_version import version as _version

# None: running from a source tree or a frozen bundle.
__version__ = _version("llamadesk") or "0.1.0"

APP_NAME = "LlamaDesk"
