"""Licence acceptance: some models (Llama 2 and its derivatives) may only be downloaded
or imported after the user has read and accepted their licence and acceptable-use policy.

A catalog entry names its licence. Any other model is recognised as a Llama 2 derivative
from what it says about itself: the Hub's metadata for a repo (the ``license:llama2``
tag, a Llama 2 base model) and a GGUF file's own metadata (``general.license``, the
``general.base_model.*`` fields, its name). Acceptance is asked once per licence and
recorded in ``licences.json`` in the config folder (licence id, the links shown, and
when), so the app can show what was accepted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamadesk.core.catalog import Licence

if TYPE_CHECKING:  # the header reader is not needed to start the window
    from llamadesk.core.gguf_validate import GGUFMetadata

log = logging.getLogger(__name__)

ACCEPTANCES_FILE = "licences.json"

#: The licence of Llama 2 and of every model derived from it (as in the catalog).
LLAMA2 = Licence(
    id="llama2",
    name="Llama 2 Community License",
    url="https://ai.meta.com/llama/license/",
    requires_acceptance=True,
    acceptable_use_url="https://ai.meta.com/llama/use-policy/",
)

# "llama2", "llama-2", "Llama 2", "LLaMA v2", "llama_2" as a word of its own (not
# "tinyllama-2b", not "llama-2.5"); Code Llama is released under the Llama 2 licence.
_LLAMA2_NAME = re.compile(r"(?<![a-z0-9])(llama[\s_-]?v?2(?![0-9.])|codellama)", re.IGNORECASE)
_LLAMA2_LICENCE_NAMES = {"llama2", "llama-2", "llama 2", "llama2-community-license",
                         "llama 2 community license"}


def _names_llama2(text: str) -> bool:
    return bool(_LLAMA2_NAME.search(text))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return [v for v in value if isinstance(v, str)]
    return []


def licence_from_hub(tags: Iterable[str], card: Mapping[str, Any] | None = None) -> Licence | None:
    """The licence to accept for a Hub repo, from its tags and model-card metadata:
    ``LLAMA2`` for a Llama 2 derivative (licence tag ``llama2`` or a Llama 2 base model),
    else None."""
    card = card or {}
    licences = [t.removeprefix("license:") for t in tags if t.startswith("license:")]
    licences += _strings(card.get("license")) + _strings(card.get("license_name"))
    if any(name.strip().lower() in _LLAMA2_LICENCE_NAMES for name in licences):
        return LLAMA2
    bases = [t.split(":")[-1] for t in tags if t.startswith("base_model:")]
    bases += _strings(card.get("base_model"))
    if any(_names_llama2(base) for base in bases):
        return LLAMA2
    return None


def licence_from_gguf(meta: GGUFMetadata) -> Licence | None:
    """The licence to accept for a model file, from its own metadata: ``LLAMA2`` when
    ``general.license`` says llama2 or its base models, name or licence link name
    Llama 2; else None."""
    if meta.licence and meta.licence.strip().lower() in _LLAMA2_LICENCE_NAMES:
        return LLAMA2
    for text in meta.lineage:
        if _names_llama2(text) or text.rstrip("/") == LLAMA2.url.rstrip("/"):
            return LLAMA2
    return None


class LicenceNotAcceptedError(Exception):
    """A download needs a licence the user has not accepted yet."""

    def __init__(self, licence: Licence) -> None:
        super().__init__(
            f"{licence.name} must be accepted before the first download of a model under it. "
            f"Read it at {licence.url}"
            + (f" and the acceptable-use policy at {licence.acceptable_use_url}"
               if licence.acceptable_use_url else "")
            + ", then accept it (in the app, or with --accept-licence).")
        self.licence = licence


def acceptance_text(licence: Licence) -> str:
    """What the user is asked to agree to, in the dialog and on the terminal."""
    lines = [f"This model is released under the {licence.name}.", f"  Licence: {licence.url}"]
    if licence.acceptable_use_url:
        lines.append(f"  Acceptable-use policy: {licence.acceptable_use_url}")
    lines.append("By accepting you confirm that you have read them and will use the model "
                 "accordingly. You are asked once for this licence.")
    return "\n".join(lines)


class LicenceAcceptances:
    """The licences this user has accepted, kept in one small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("licence acceptances at %s are unreadable (%s)", self.path, exc)
            return {}
        accepted = data.get("accepted") if isinstance(data, dict) else None
        return accepted if isinstance(accepted, dict) else {}

    def is_accepted(self, licence_id: str) -> bool:
        """Whether the user has accepted this licence."""
        with self._lock:
            return licence_id in self._read()

    def needs_acceptance(self, licence: Licence | None) -> bool:
        """Whether a download under ``licence`` must ask first."""
        return bool(licence and licence.requires_acceptance
                    and not self.is_accepted(licence.id))

    def accept(self, licence: Licence) -> None:
        """Record that the user accepted ``licence`` (now)."""
        with self._lock:
            accepted = self._read()
            accepted[licence.id] = {
                "name": licence.name, "url": licence.url,
                "acceptable_use_url": licence.acceptable_use_url,
                "accepted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"accepted": accepted}, indent=2), encoding="utf-8")
            os.replace(tmp, self.path)
        log.info("licence %s accepted", licence.id)

    def require(self, licence: Licence | None) -> None:
        """Raise LicenceNotAcceptedError if a download under ``licence`` must ask first."""
        if licence is not None and self.needs_acceptance(licence):
            raise LicenceNotAcceptedError(licence)
