"""Runtimes run job attempts behind one seam (`agent.runtime.base.Runtime`).

An agent holds one `NodeRuntimes`: the process runtime plus the container runtime it found (or
was told to use). Attempts with an image go to the container runtime, attempts without one to
the process runtime, unless the job names a runtime; handles go back to the runtime that made
them.
"""

from __future__ import annotations

from agent.runtime.base import AttemptHandle, AttemptSpec, CannotStart, ExitStatus, Runtime
from agent.runtime.container_cli import CONTAINER_RUNTIMES, ContainerCliRuntime, cli_works, oom_cgroups_for
from agent.runtime.output import LogLimits
from agent.runtime.process import ProcessRuntime
from shoal.errors import InvalidArgument

__all__ = [
    "AttemptHandle",
    "AttemptSpec",
    "CannotStart",
    "ContainerCliRuntime",
    "ExitStatus",
    "NodeRuntimes",
    "ProcessRuntime",
    "Runtime",
    "configure_runtimes",
    "detect_runtimes",
    "make_runtime",
    "RUNTIMES",
]

# Runtimes this agent build can run, by the name jobs and the --runtime flag use.
RUNTIMES: tuple[str, ...] = ("process", *CONTAINER_RUNTIMES)


def detect_runtimes() -> tuple[str, ...]:
    """What this host can run, preferred first: podman, then docker (if it works), then process."""
    return (*(name for name in CONTAINER_RUNTIMES if cli_works(name)), "process")


_options: dict[str, object] = {"pull": "", "oci_runtime": "", "log_limits": None}


def configure_runtimes(*, pull: str = "", oci_runtime: str = "", log_limits: LogLimits | None = None) -> None:
    """Options `make_runtime` uses when not given (set once by `shoal agent` from its flags)."""
    _options.update(pull=pull, oci_runtime=oci_runtime, log_limits=log_limits)


def make_runtime(name: str, *, pull: str | None = None, oci_runtime: str | None = None,
                 log_limits: LogLimits | None = None) -> Runtime:
    """The runtime(s) of a node preferring `name`; InvalidArgument if there is no such runtime.

    "process" is the process runtime alone; "podman"/"docker" is that container runtime plus
    the process runtime (for jobs without an image), behind one `NodeRuntimes`.
    """
    pull = _options["pull"] if pull is None else pull  # type: ignore[assignment]
    oci_runtime = _options["oci_runtime"] if oci_runtime is None else oci_runtime  # type: ignore[assignment]
    log_limits = log_limits or _options["log_limits"]  # type: ignore[assignment]
    if name == "process":
        return ProcessRuntime(log_limits=log_limits)
    if name in CONTAINER_RUNTIMES:
        container = ContainerCliRuntime(name, pull=pull or "", oci_runtime=oci_runtime or "",
                                        log_limits=log_limits)
        container.oom_cgroups = oom_cgroups_for(name, container.binary)
        return NodeRuntimes([container, ProcessRuntime(log_limits=log_limits)])
    raise InvalidArgument(f"unknown runtime {name!r} (available: {', '.join(RUNTIMES)})")


class NodeRuntimes:
    """The runtimes of one node behind the single `Runtime` interface.

    `name` is the preferred runtime (what the node registers first). `start` picks by the
    spec: its `runtime` if the job named one, else the first container runtime for an image,
    else the process runtime.
    """

    def __init__(self, runtimes: list[Runtime]) -> None:
        if not runtimes:
            raise InvalidArgument("a node needs at least one runtime")
        self.by_name = {r.name: r for r in runtimes}
        self.names = tuple(self.by_name)
        self.name = self.names[0]

    def offers(self, name: str) -> bool:
        return not name or name in self.by_name

    def choose(self, spec: AttemptSpec, wanted: str = "") -> Runtime:
        if wanted:
            runtime = self.by_name.get(wanted)
            if runtime is None:
                raise CannotStart(f"runtime {wanted!r} is not available on this node (it has {', '.join(self.names)})")
            return runtime
        if spec.image:
            for name in self.names:
                if name in CONTAINER_RUNTIMES:
                    return self.by_name[name]
            raise CannotStart(f"this node has no container runtime (podman or docker) for image {spec.image!r}")
        if "process" in self.by_name:
            return self.by_name["process"]
        return self.by_name[self.name]

    async def start(self, spec: AttemptSpec, log_path):  # noqa: ANN001, ANN201 - see Runtime
        return await self.choose(spec, spec.runtime).start(spec, log_path)

    async def wait(self, handle: AttemptHandle) -> ExitStatus:
        return await self._of(handle).wait(handle)

    async def kill(self, handle: AttemptHandle, grace: float) -> None:
        await self._of(handle).kill(handle, grace)

    async def cleanup(self, handle: AttemptHandle) -> None:
        await self._of(handle).cleanup(handle)

    def is_alive(self, handle: AttemptHandle) -> bool:
        runtime = self.by_name.get(handle.runtime)
        return runtime is not None and runtime.is_alive(handle)

    def _of(self, handle: AttemptHandle) -> Runtime:
        runtime = self.by_name.get(handle.runtime)
        if runtime is None:
            raise CannotStart(f"no {handle.runtime} runtime on this node")
        return runtime
