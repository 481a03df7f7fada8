"""An in-process fake of the shoal.v1.Batch service, for testing the SDK and the CLI.

It records every request and answers from canned handlers, so a test states what the server
says and asserts what the client sent. Unconfigured methods answer with an empty response (or
an empty stream).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message

from shoal.errors import LEADER_METADATA_KEY
from shoal.v1 import batch_pb2

_SERVICE = batch_pb2.DESCRIPTOR.services_by_name["Batch"]

Handler = Callable[[Any, grpc.ServicerContext], Any]


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str, leader: str = "") -> None:
    """End the call with a status, as the real servicers do (leader hint in trailing metadata)."""
    if leader:
        context.set_trailing_metadata(((LEADER_METADATA_KEY, leader),))
    context.abort(code, details)


class FakeBatch:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Message]] = []
        self.handlers: dict[str, Handler | Message | Iterable[Message]] = {}
        self._lock = threading.Lock()
        handlers = {}
        for method in _SERVICE.methods:
            request_cls = message_factory.GetMessageClass(method.input_type)
            response_cls = message_factory.GetMessageClass(method.output_type)
            if method.server_streaming:
                handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                    self._streaming(method.name),
                    request_deserializer=request_cls.FromString,
                    response_serializer=response_cls.SerializeToString,
                )
            else:
                handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                    self._unary(method.name, response_cls),
                    request_deserializer=request_cls.FromString,
                    response_serializer=response_cls.SerializeToString,
                )
        self.server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> FakeBatch:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None)

    # --- configuring -------------------------------------------------------------------------------

    def on(self, method: str, answer: Handler | Message | Iterable[Message]) -> None:
        """Answer `method` with a message, a list of stream messages, or handler(request, context)."""
        self.handlers[method] = answer

    def fail(self, method: str, code: grpc.StatusCode, details: str, leader: str = "") -> None:
        """Answer `method` with an error status (and a leader hint, if given)."""

        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            abort(context, code, details, leader)

        self.handlers[method] = handler

    # --- inspecting --------------------------------------------------------------------------------

    def calls(self, method: str) -> list[Any]:
        with self._lock:
            return [r for name, r in self.requests if name == method]

    # --- serving -----------------------------------------------------------------------------------

    def _record(self, name: str, request: Message) -> Any:
        with self._lock:
            self.requests.append((name, request))
        return self.handlers.get(name)

    def _unary(self, name: str, response_cls: type[Message]) -> Handler:
        def handle(request: Message, context: grpc.ServicerContext) -> Message:
            answer = self._record(name, request)
            if answer is None:
                return response_cls()
            if callable(answer):
                return answer(request, context)
            return answer  # type: ignore[return-value]

        return handle

    def _streaming(self, name: str) -> Handler:
        def handle(request: Message, context: grpc.ServicerContext) -> Iterable[Message]:
            answer = self._record(name, request)
            if answer is None:
                return
            if callable(answer):
                answer = answer(request, context)
            yield from answer  # type: ignore[misc]

        return handle
