"""Text fit to print where people and Kestra read it: terminals, CI logs, Kestra task logs.

File names, flow sources, namespace files and server messages come from Git or the target, so
whoever can push there chooses them. Printed as they are, they could:

- rewrite what a reviewer sees: an escape sequence or a carriage return moves the cursor, erases
  or recolours lines; bidirectional overrides reorder a line's characters on screen;
- add lines: Kestra's log reader ends a line at a lone carriage return, editors and browsers at
  U+2028 and U+2029;
- talk to Kestra: a task's output line that is exactly ``::{json}::`` sets its outputs and
  metrics, or logs at any level.

``safe_text`` is what every printed text goes through. Pure and idempotent: text already made
safe comes back unchanged, so applying it twice (renderer, then writer) is harmless.
"""

from __future__ import annotations

import re

__all__ = ["defuse_markers", "safe_text"]

# C0 controls but tab and newline, DEL, C1 controls, the line and paragraph separators, and the
# bidirectional marks, embeddings, overrides and isolates
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c"
_CONTROLS = re.compile(f"[{_UNSAFE}]")
_CONTROLS_AND_NEWLINE = re.compile(f"[{_UNSAFE}\n]")
_NAMED = {"\n": "\\n", "\r": "\\r"}

# what Kestra reads as outputs, metrics or logs (io.kestra: ^::(\{.*})::$ on each line); matched
# on the line without surrounding whitespace too, in case a reader trims lines first
_MARKER = re.compile(r"::\{.*\}::")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def _defuse(line: str) -> str:
    bare = line.strip()
    if not _MARKER.fullmatch(bare):
        return line
    start = len(line) - len(line.lstrip())
    return f"{line[:start]}\\x3a{line[start + 1:]}"  # the first colon, written as an escape


def defuse_markers(text: str) -> str:
    """``text`` with every line that Kestra would read as a ``::{json}::`` command made inert.

    Only for text whose control characters are already escaped (such as a report painted with
    terminal colours after escaping); use ``safe_text`` for everything else.
    """
    return "\n".join(_defuse(line) for line in text.split("\n"))


def safe_text(text: str, *, one_line: bool = False) -> str:
    """``text`` made safe to print on a terminal or in a Kestra task log.

    Control characters become visible escapes (ESC is shown as ``\\x1b``, a carriage return as
    ``\\r``, U+2028 as ``\\u2028``); tabs stay, and newlines stay line breaks unless ``one_line``
    (then they read ``\\n``: for names and other values shown within a line). A line that Kestra
    would read as outputs, metrics or logs (``::{...}::``) gets its first colon escaped.
    """
    pattern = _CONTROLS_AND_NEWLINE if one_line else _CONTROLS
    return defuse_markers(pattern.sub(_escape, text))
