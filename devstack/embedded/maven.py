"""The JDK and the jars of the embedded JVM services.

Jars are resolved from Maven Central with the local `mvn` into Maven's own repository
(`~/.m2`, outside the work tree; the user's Maven settings and mirrors apply). The resolved
classpath is kept in Parley's cache directory, so later starts run no Maven at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

MIN_JAVA = 17

INSTALL_HINT = (
    "Parley's embedded Kafka and Cassandra run on a JDK: install JDK {min}+ and Maven "
    "(Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless maven`; macOS: "
    "`brew install openjdk@17 maven`), or point Parley at a running Kafka with --kafka HOST:PORT."
)


class JvmUnavailable(RuntimeError):
    """No usable JDK or Maven on this machine; the message says what to install."""


def cache_dir() -> Path:
    """Where Parley keeps resolved classpaths: $PARLEY_CACHE_DIR, else $XDG_CACHE_HOME/parley."""
    explicit = os.environ.get("PARLEY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "parley"


def java_binary() -> str:
    """The `java` of $JAVA_HOME, else the one on PATH, if it is version 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise JvmUnavailable("no `java` found. " + INSTALL_HINT.format(min=MIN_JAVA))
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if found is None or int(found.group(1)) < MIN_JAVA:
        version = found.group(1) if found else "unknown"
        raise JvmUnavailable(f"{java} is Java {version}; " + INSTALL_HINT.format(min=MIN_JAVA))
    return java


def _pom(coordinates: Sequence[str]) -> str:
    dependencies = []
    for coordinate in coordinates:
        group, artifact, version = coordinate.split(":")
        dependencies.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>parley.embedded</groupId><artifactId>classpath</artifactId><version>1</version>"
        f"<dependencies>{''.join(dependencies)}</dependencies></project>\n"
    )


def classpath(name: str, coordinates: Sequence[str]) -> list[Path]:
    """The jars of `coordinates` (`group:artifact:version`) and all they depend on at run time.

    The first call resolves them with Maven (downloading what `~/.m2` lacks); later calls read
    the cached list, and resolve again only if a jar has gone from the Maven repository.
    """
    key = hashlib.sha256("\n".join(coordinates).encode()).hexdigest()[:12]
    work = cache_dir() / f"{name}-{key}"
    work.mkdir(parents=True, exist_ok=True)
    listing = work / "classpath.txt"
    # One resolver at a time: `make dev` and `make test` may start together on a fresh machine.
    with (work / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jars = _read_listing(listing)
        if jars is None:
            print(f"Parley: resolving the {name} jars with Maven (once)", file=sys.stderr)
            _resolve(work, coordinates, listing)
            jars = _read_listing(listing)
            if jars is None:
                raise RuntimeError(f"Maven resolved no usable classpath for {name} ({work})")
        return jars


def _read_listing(listing: Path) -> list[Path] | None:
    if not listing.exists():
        return None
    jars = [Path(p) for p in listing.read_text().strip().split(os.pathsep) if p]
    return jars if jars and all(jar.exists() for jar in jars) else None


def _resolve(work: Path, coordinates: Sequence[str], listing: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JvmUnavailable("no `mvn` found. " + INSTALL_HINT.format(min=MIN_JAVA))
    (work / "pom.xml").write_text(_pom(coordinates))
    command = [
        mvn,
        "--batch-mode",
        "--file",
        str(work / "pom.xml"),
        "dependency:build-classpath",
        f"-Dmdep.outputFile={listing}",
        "-Dmdep.includeScope=runtime",
    ]
    # Maven's own log, read as it comes: each finished download moves the progress bar (shown
    # on a terminal), and the tail is kept to say why if Maven fails.
    tail: deque[str] = deque(maxlen=200)
    with (
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as maven,
        tqdm(desc="Parley: downloaded", unit=" files", disable=None, leave=False) as bar,
    ):
        assert maven.stdout is not None
        for line in maven.stdout:
            tail.append(line)
            if line.startswith("Downloaded from"):
                bar.update(1)
    result = subprocess.CompletedProcess(command, maven.returncode, "".join(tail), "")
    if result.returncode != 0:
        listing.unlink(missing_ok=True)
        raise RuntimeError(f"Maven could not resolve {', '.join(coordinates)}:\n{result.stdout}")
