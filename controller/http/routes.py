"""Which route sets the controller's HTTP server carries (see controller/http/server.py)."""

from __future__ import annotations

from controller.api import auth
from controller.http.native import NativeRoutes
from controller.http.server import RouteSet
from controller.http.ui import DashboardRoutes


def route_sets(edge: auth.EdgeOptions) -> list[RouteSet]:
    """Every part of the HTTP edge, in the order their routes are added."""
    sets: list[RouteSet] = []
    from controller.http.awsbatch import AwsBatchRoutes

    sets.append(AwsBatchRoutes(edge))  # AWS Batch's wire API under /v1/
    sets.append(DashboardRoutes())  # /ui/: the dashboard (controller/http/ui)
    sets.append(NativeRoutes(edge))  # POST /shoal.v1.Batch/<Method>: the CLI's path without gRPC
    return sets
