"""Look for a secret in every file under a folder, in the forms a leak would take."""

from __future__ import annotations

import base64
from pathlib import Path


def encodings(secret: str) -> dict[str, bytes]:
    """The forms a leaked token would take in a file."""
    raw = secret.encode()
    return {"utf-8": raw, "utf-16": secret.encode("utf-16-le"),
            "base64": base64.b64encode(raw).rstrip(b"="),
            "bearer header": base64.b64encode(b"Bearer " + raw).rstrip(b"=")}


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file under ``root`` that contains ``secret`` in some form."""
    forms = encodings(secret)
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path} ({name})" for name, form in forms.items() if form in data]
    return found
