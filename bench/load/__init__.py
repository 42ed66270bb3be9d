"""The load and soak harness: the hub as a real server, driven over loopback.

- `procs`: start and stop `imaging-hub serve` (and fault sources) as process groups
- `proc`: what /proc says about a process tree: resident memory, CPU, threads, sockets
- `mix`: a seeded mix of realistic cohort questions built from the hub's own facet values
- `wire`: a lean HTTP/1.1 keep-alive client on asyncio streams (one connection a client)
- `driver`: closed-loop (N clients) and open-loop (fixed rate) drivers
- `report`: percentiles, errors by kind, memory over time
- `session`: one measured run, start to stop
- `scenarios`: the runs `python -m bench load|soak` starts, composed from the above
"""
