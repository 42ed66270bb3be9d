"""`python -m bench.load.faults NAME:MODE:DELAY_S[:FAILURES] ...`: fault sources for a load run.

The real fault servers of the federation tests (tests/federation/fault_server.py), with
the number of failures as a fourth field, so `err:fail_then_ok:0:1000000000` answers 500
for the whole run (the tests' own launcher fixes it at two). Prints one URL a line,
then serves until killed.
"""

from __future__ import annotations

import sys
import threading

from tests.federation.fault_server import FaultServer


def main(specs: list[str]) -> None:
    servers = []
    for spec in specs:
        name, mode, delay, *rest = spec.split(":")
        failures = int(rest[0]) if rest else 2
        server = FaultServer(name, 30, mode=mode, delay_s=float(delay), failures=failures)
        servers.append(server.__enter__())
    for server in servers:
        print(server.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
