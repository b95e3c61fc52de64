"""Build and call the launcher that runs Kestra's own engine (tests/real_kestra, docs/real-kestra.md).

One Maven profile per Kestra line; the build needs a JDK new enough for that line and Maven, and
reaches Maven Central only while ~/.m2 lacks the engine's modules (the first build).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Kestra line -> the Java release its modules are compiled for (1.3: 21, 2.0: 25)
JAVA_RELEASE = {"1.3": 21, "2.0": 25}
BUILD_TIMEOUT = 900


class Unavailable(Exception):
    """What this machine lacks to run a Kestra line (the reason a test is skipped)."""


def _release(home: Path) -> int | None:
    """The feature release of the JDK at home, from its `release` file."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)', text, re.M)
    return int(found.group(1)) if found else None


def java_home(line: str) -> Path:
    """A JDK for this line: KESTRA_JAVA_HOME, JAVA_HOME, or the newest JDK in /usr/lib/jvm."""
    needed = JAVA_RELEASE[line]
    candidates = [Path(os.environ[name]) for name in ("KESTRA_JAVA_HOME", "JAVA_HOME")
                  if os.environ.get(name)]
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(jvm.iterdir(), key=lambda home: _release(home) or 0, reverse=True)
    for home in candidates:
        if (_release(home) or 0) >= needed and (home / "bin" / "javac").exists():
            return home
    raise Unavailable(f"Kestra {line} needs a JDK {needed} or newer (set KESTRA_JAVA_HOME); "
                      f"none found in KESTRA_JAVA_HOME, JAVA_HOME or /usr/lib/jvm")


def maven() -> str:
    found = shutil.which("mvn")
    if not found:
        raise Unavailable("Maven (mvn) is not on PATH: apt-get install maven")
    return found


def build(line: str) -> list[str]:
    """Compiles the launcher for a Kestra line; returns the java command that runs it."""
    home = java_home(line)
    mvn = maven()
    target = HERE / "target" / f"kestra-{line}"
    classpath_file = target / "classpath.txt"
    command = [mvn, "-B", "-q", f"-Pkestra-{line}", "compile", "dependency:build-classpath",
               f"-Dmdep.outputFile={classpath_file}"]
    env = {**os.environ, "JAVA_HOME": str(home)}
    # offline first: once ~/.m2 holds the engine's modules no registry is asked
    done = subprocess.run([*command[:2], "-o", *command[2:]], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if done.returncode != 0:
        done = subprocess.run(command, cwd=HERE, env=env, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"building the Kestra {line} launcher failed:\n{done.stdout[-4000:]}"
                           f"{done.stderr[-4000:]}")
    classpath = f"{target / 'classes'}{os.pathsep}{classpath_file.read_text().strip()}"
    # the launcher lives for one command: the quick compiler alone halves a 2.0 run
    return [str(home / "bin" / "java"), "-XX:TieredStopAtLevel=1", "-cp", classpath,
            "kestrapromote.realkestra.Launcher"]


def launch(java: list[str], *args: str, timeout: float = 300) -> object:
    """Runs one launcher command; its JSON answer (stderr has the engine's own log)."""
    done = subprocess.run([*java, *args], capture_output=True, text=True, timeout=timeout)
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"the launcher gave no JSON (exit {done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-4000:]}") from None
    if done.returncode != 0:
        raise RuntimeError(f"the launcher failed: {answer}\n{done.stderr[-4000:]}")
    return answer
