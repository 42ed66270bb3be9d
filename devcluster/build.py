"""Find Java and Maven, and build deploy/opensearch-cluster when its jars are missing or stale.

The node classpath is the project's target/lib directory (NodeMain's jar plus every runtime
jar Maven copied there), so a running node needs neither Maven nor ~/.m2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devcluster.errors import ClusterError

PROJECT = Path(__file__).resolve().parent.parent / "deploy" / "opensearch-cluster"
LIB = PROJECT / "target" / "lib"
MAIN_JAR = LIB / "opensearch-cluster.jar"
MAIN_CLASS = "org.imaginghub.cluster.NodeMain"
OPENSEARCH_JAR_GLOB = "opensearch-2*.jar"


def java_binary() -> str:
    """`$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise ClusterError(
            "no java: install a JDK 17 or later (Debian: apt-get install openjdk-17-jdk-headless)"
            " or set JAVA_HOME"
        )
    return found


def _sources() -> list[Path]:
    return [PROJECT / "pom.xml", *sorted((PROJECT / "src").rglob("*"))]


def is_built(project: Path = PROJECT) -> bool:
    """The jars exist and are newer than the pom and every source file."""
    main_jar = project / "target" / "lib" / MAIN_JAR.name
    if not main_jar.is_file() or not any((project / "target" / "lib").glob(OPENSEARCH_JAR_GLOB)):
        return False
    built_at = main_jar.stat().st_mtime
    return all(path.stat().st_mtime <= built_at for path in _sources() if path.is_file())


def _has_local_repository() -> bool:
    """~/.m2 already holds the server jar, so an offline build can work."""
    repo = Path.home() / ".m2" / "repository" / "org" / "opensearch" / "opensearch"
    return repo.is_dir() and any(repo.iterdir())


def build(force: bool = False) -> Path:
    """Build the Maven project if needed (offline first when ~/.m2 has it); the lib dir."""
    if not force and is_built():
        return LIB
    mvn = shutil.which("mvn")
    if not mvn:
        raise ClusterError(
            f"the node jars in {LIB} are missing and Maven is not installed "
            "(Debian: apt-get install maven)"
        )
    java_binary()  # a clear error before Maven's own
    attempts = [[mvn, "-q", "-B", "-o", "package"]] if _has_local_repository() else []
    attempts.append([mvn, "-q", "-B", "package"])
    output = ""
    for argv in attempts:
        done = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, check=False)
        if done.returncode == 0 and MAIN_JAR.is_file():
            MAIN_JAR.touch()  # newer than the sources even when Maven reused the jar
            return LIB
        output = (done.stdout + done.stderr)[-4000:]
    raise ClusterError(f"building {PROJECT} failed ({' '.join(attempts[-1])}):\n{output}")


def classpath(lib: Path = LIB) -> str:
    return str(lib / "*")
