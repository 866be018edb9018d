"""Human-readable sizes, speeds and durations (decimal units, as the Hub shows sizes)."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """``4_081_004_224`` -> ``'4.1 GB'``."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_speed(bytes_per_s: float) -> str:
    """Bytes per second as ``'12.3 MB/s'``."""
    return f"{format_bytes(bytes_per_s)}/s"


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``'1 min 15 s'``; None (unknown) -> ``'–'``."""
    if seconds is None or seconds < 0:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
