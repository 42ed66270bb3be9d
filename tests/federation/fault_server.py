"""A real local QIDO-RS server that misbehaves on purpose, for fault-injection tests.

It answers `GET /dicom-web/series` (and `/studies`) with DICOM JSON and honours
limit/offset, like a small Orthanc. Its `mode` decides how it fails:

  ok            answers after `delay_s`
  hang          never answers (the hub must time out)
  fail_then_ok  HTTP 500 for the first `failures` requests, then answers
  throttle      HTTP 429 with Retry-After for the first `failures` requests
  malformed     a 200 whose body is not JSON
  drop          sends half a body, then closes the connection (from the second page on)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def series_json(collection: str, index: int, modality: str = "CT") -> dict[str, Any]:
    """One series as QIDO-RS DICOM JSON."""
    study = f"2.25.{abs(hash(collection)) % 10**9}.{index // 3}"
    return {
        "0020000D": {"vr": "UI", "Value": [study]},
        "0020000E": {"vr": "UI", "Value": [f"{study}.{index}"]},
        "00080060": {"vr": "CS", "Value": [modality]},
        "00100020": {"vr": "LO", "Value": [f"{collection}-P{index // 6}"]},
        "00100040": {"vr": "CS", "Value": ["F" if index % 2 else "M"]},
        "00101010": {"vr": "AS", "Value": [f"{40 + index % 30:03d}Y"]},
        "00080020": {"vr": "DA", "Value": [f"20{10 + index % 10}0101"]},
        "00180015": {"vr": "CS", "Value": ["CHEST"]},
        "0008103E": {"vr": "LO", "Value": [f"series {index}"]},
        "00201209": {"vr": "IS", "Value": [10 + index]},
    }


class FaultServer:
    """Runs in a thread on a free loopback port; `url` is its DICOMweb root."""

    def __init__(
        self,
        name: str,
        series: int = 30,
        mode: str = "ok",
        delay_s: float = 0.0,
        failures: int = 2,
        retry_after_s: int = 1,
    ) -> None:
        self.name = name
        self.mode = mode
        self.delay_s = delay_s
        self.failures = failures
        self.retry_after_s = retry_after_s
        self.records = [series_json(name, i) for i in range(series)]
        self.requests = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/dicom-web"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # the http.server API names it so
                with server._lock:
                    server.requests += 1
                    n = server.requests
                query = parse_qs(urlparse(self.path).query)
                offset = int(query.get("offset", ["0"])[0])
                limit = int(query.get("limit", [str(len(server.records))])[0])
                if server.mode == "hang":
                    time.sleep(3600)
                    return
                if server.mode in ("fail_then_ok", "throttle") and n <= server.failures:
                    status = 500 if server.mode == "fail_then_ok" else 429
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", str(server.retry_after_s))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                time.sleep(server.delay_s)
                body = json.dumps(server.records[offset : offset + limit]).encode()
                if server.mode == "malformed":
                    body = b'[{"0020000D": {"vr": "UI", "Value": ["1.2.3"]'
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "drop" and offset > 0:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        return Handler


def main() -> None:
    """Run servers in a process of their own (benchmarks keep them off the hub's GIL):
    `python -m tests.federation.fault_server NAME:MODE:DELAY_S ...` prints one URL a line."""
    import sys

    servers = []
    for spec in sys.argv[1:]:
        name, mode, delay = spec.split(":")
        servers.append(FaultServer(name, 30, mode=mode, delay_s=float(delay)).__enter__())
    for server in servers:
        print(server.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
