"""The shoal node agent: runs job attempts on one host for the controller.

    main.py      command line (`shoal agent`, `python -m agent`) -> AgentConfig
    daemon.py    wires the pieces; SIGTERM/SIGINT -> graceful interruption
    session.py   the AgentGateway.Connect stream: register, heartbeat, commands, self-fencing
    attempts.py  attempts held by this node: start, timeout, kill, results, attempts.json
    logs.py      reading / tailing an attempt's log for ReadLogs
    capacity.py  what the host offers (psutil, minus the reserve)
    identity.py  state directory, node id, single-agent lock
    runtime/     the runtime seam (base.py) and its implementations (process.py)

It never imports from `controller`: the two meet only in shoal.v1's protocol.
"""
