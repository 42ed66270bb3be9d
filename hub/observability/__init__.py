"""Seeing what the hub does: Prometheus metrics, JSON logs with request ids, traces.

`metrics` defines every metric family and renders `/metrics` (multiprocess aware),
`logs` the JSON log format and its secret scrubbing, `context` the request id,
`middleware` the per-request part (id, access log, HTTP metrics) and `tracing` the
optional OpenTelemetry spans (`pip install imaging-hub[otel]`).
"""
