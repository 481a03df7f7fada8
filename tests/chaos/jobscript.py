"""The chaos tests' job: journal what it does, run for a while, exit with a given code.

    python -I -S jobscript.py JOURNAL SECONDS EXIT_CODES [stubborn]

Runs as a job attempt under the process runtime: SHOAL_JOB_ID and SHOAL_JOB_ATTEMPT come from
the agent, the node is read off the working directory (the agent runs each attempt in
`<state dir>/attempts/<job>/<attempt>/work`, and the state dir is named after the node).
EXIT_CODES is a comma-separated list, one per attempt (the last repeats): "3,0" fails the
first attempt and succeeds afterwards.

Every journal line is one write(2) to a file opened with O_APPEND, so lines of concurrent
attempts never interleave:

    <event> <job id> <attempt> <node> <monotonic s> <epoch s> <pid> [<exit code>]

`start` once, `beat` every BEAT seconds while it runs (the last beat bounds from below when a
SIGKILLed attempt was still alive; a gap between beats shows the process was frozen), `term`
when SIGTERM arrives, `stop` with the exit code right before a normal exit. CLOCK_MONOTONIC is
system-wide, so lines of attempts on different agents (and network namespaces) compare.
With `stubborn`, SIGTERM is journalled and ignored, so only SIGKILL ends the attempt.

Standard library only, and started with -S: it must start fast on a busy machine.
"""

import os
import signal
import sys
import time

BEAT = 0.1


def main() -> int:
    journal, seconds, codes = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    stubborn = len(sys.argv) > 4 and sys.argv[4] == "stubborn"
    job_id = os.environ["SHOAL_JOB_ID"]
    attempt = int(os.environ["SHOAL_JOB_ATTEMPT"])
    node = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.getcwd())))))
    exit_codes = [int(c) for c in codes.split(",")]
    exit_code = exit_codes[min(attempt, len(exit_codes)) - 1]
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(event: str, *extra: object) -> None:
        fields = [
            event,
            job_id,
            attempt,
            node,
            f"{time.monotonic():.6f}",
            f"{time.time():.6f}",
            os.getpid(),
            *extra,
        ]
        os.write(fd, (" ".join(str(f) for f in fields) + "\n").encode())

    def on_term(signum: int, frame: object) -> None:
        record("term")
        if not stubborn:
            record("stop", 143)
            os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    record("start")
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(BEAT, left))
        record("beat")
    record("stop", exit_code)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
