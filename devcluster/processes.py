"""Starting a node's JVM and ending it by PID, checking the PID is still that node."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from devcluster.build import MAIN_CLASS, classpath, java_binary
from devcluster.layout import NodeSpec

PR_SET_PDEATHSIG = 1


def jvm_argv(node: NodeSpec, heap: str, lib: Path) -> list[str]:
    home = Path(node.home)
    return [
        java_binary(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",  # two cores shared by three nodes: no concurrent GC threads
        "-XX:-HeapDumpOnOutOfMemoryError",
        "-Xss1m",
        "-Dfile.encoding=UTF-8",
        "-Djava.awt.headless=true",
        f"-Djava.io.tmpdir={home / 'tmp'}",
        "-Dlog4j.shutdownHookEnabled=false",
        "-Dlog4j2.disable.jmx=true",
        "-Dio.netty.allocator.numDirectArenas=0",
        "-Dopensearch.devcluster=true",  # lets `stop` recognise this JVM by its command line
        "-cp",
        classpath(lib),
        MAIN_CLASS,
        str(home),
    ]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(node: NodeSpec, heap: str, lib: Path, bound_to_parent: bool) -> subprocess.Popen[bytes]:
    """Start the node's JVM in its own session, output to logs/console.log.

    `bound_to_parent` (the test suite's choice) asks the kernel to end the JVM if this
    process dies without stopping it; an operator's cluster outlives the command.
    """
    console = open(node.logs / "console.log", "ab")  # noqa: SIM115 (the child inherits it)
    preexec: Callable[[], None] | None = _die_with_parent if bound_to_parent else None
    try:
        return subprocess.Popen(
            jvm_argv(node, heap, lib),
            cwd=node.home,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop the nodes
            preexec_fn=preexec,  # only prctl, before exec
        )
    finally:
        console.close()


def is_node_process(pid: int, node: NodeSpec) -> bool:
    """The PID is alive and is this node's JVM (not a recycled PID of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if b"-Dopensearch.devcluster=true" not in cmdline or node.home.encode() not in cmdline:
        return False
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return status != "Z"


def end(pid: int, node: NodeSpec, grace_s: float = 20.0) -> None:
    """SIGTERM (the node closes cleanly), then SIGKILL after the grace period."""
    if not is_node_process(pid, node):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_node_process(pid, node):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        _reap(pid)
        if not is_node_process(pid, node):
            return
        time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process, 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
