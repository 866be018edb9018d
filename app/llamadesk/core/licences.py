"""Licence acceptance: some models (Llama 2 and its derivatives) may only be downloaded
after the user has read and accepted their licence and acceptable-use policy.

Acceptance is asked once per licence and recorded in ``licences.json`` in the config
folder (licence id, the links shown, and when), so the app can show what was accepted.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from llamadesk.core.catalog import Licence

log = logging.getLogger(__name__)

ACCEPTANCES_FILE = "licences.json"


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
