"""Quoting input in what we print: a name or reason from a manifest, profile or path reaches the terminal, the
Markdown summary and CI logs, and must not move the cursor, clear the screen or forge a line such as "PASS"."""

from __future__ import annotations


def escape_controls(text: str) -> str:
    """TEXT with every non-printable character (ESC, CR, NUL, newline, ...) shown as its Python escape."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
