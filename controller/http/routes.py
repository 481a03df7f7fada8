"""Which route sets the controller's HTTP server carries (see controller/http/server.py)."""

from __future__ import annotations

from controller.api import auth
from controller.http.native import NativeRoutes
from controller.http.server import RouteSet


def route_sets(edge: auth.EdgeOptions) -> list[RouteSet]:
    """Every part of the HTTP edge, in the order their routes are added."""
    sets: list[RouteSet] = []
    sets.append(NativeRoutes(edge))  # POST /shoal.v1.Batch/<Method>: the CLI's path without gRPC
    return sets
