"""`shoal why JOB`: every reason a job is not running, from the scheduler's own decisions."""

from __future__ import annotations

import argparse

from shoal.cli import render
from shoal.cli.options import EXIT_OK, addr_parent, connect, formatter, out, output_parent


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "why",
        parents=[addr_parent(), output_parent()],
        help="explain why a job is not running",
        description="Explain why JOB is not running: the dependencies it waits on, a disabled queue, "
        "no node big enough (with the numbers), all capacity busy (with its place in the queue), "
        "a managed environment still scaling up; for a multi-node job, how many nodes of the shape it "
        "needs are free and large enough (and the nodes it reserved).",
        formatter_class=formatter,
    )
    p.add_argument("job_id", metavar="JOB_ID")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        answer = client.explain_job(args.job_id)
    status = render.enum_label("JobStatus", answer.status)
    if args.output == "json":
        out(render.dumps({"jobId": answer.job_id, "status": status, "reasons": list(answer.reasons)}))
        return EXIT_OK
    out(f"{answer.job_id} is {status}")
    for reason in answer.reasons:
        out(f"  - {reason}")
    return EXIT_OK
