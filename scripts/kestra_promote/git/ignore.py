"""`.kestraignore`: gitignore-style patterns that exclude paths of the source folder.

Supported: blank lines and ``#`` comments, ``!`` to re-include, a trailing ``/`` for directories
only, a leading or inner ``/`` to anchor the pattern at the folder's root, ``*``, ``?``,
``[...]`` and ``**``. The last matching pattern wins, as in Git.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILE = ".kestraignore"


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    directory_only: bool


def _translate(glob: str) -> str:
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif char == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _parse(line: str) -> _Rule | None:
    line = line.rstrip("\n").rstrip("\r")
    if not line.strip() or line.startswith("#"):
        return None
    line = line.rstrip(" ")
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    directory_only = line.endswith("/")
    line = line.rstrip("/")
    anchored = "/" in line
    line = line.lstrip("/")
    body = _translate(line)
    prefix = "" if anchored else "(?:.*/)?"
    # matched against the whole path (fullmatch); DOTALL: names may hold any character
    return _Rule(re.compile(f"{prefix}{body}", re.DOTALL), negated, directory_only)


class IgnoreRules:
    """Decides whether a path (relative, with forward slashes) is ignored."""

    def __init__(self, lines: list[str]) -> None:
        self._rules = [rule for rule in map(_parse, lines) if rule is not None]

    @classmethod
    def from_folder(cls, root: Path) -> IgnoreRules:
        path = root / IGNORE_FILE
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        return cls(lines)

    def ignored(self, relative: str, *, is_dir: bool) -> bool:
        result = False
        for rule in self._rules:
            if rule.directory_only and not is_dir:
                continue
            if rule.regex.fullmatch(relative):
                result = not rule.negated
        return result
