"""Which route sets the controller's HTTP server carries (see controller/http/server.py)."""

from __future__ import annotations

from controller.api import auth
from controller.http.server import RouteSet
from controller.http.ui import DashboardRoutes


def route_sets(edge: auth.EdgeOptions) -> list[RouteSet]:
    """Every part of the HTTP edge, in the order their routes are added."""
    sets: list[RouteSet] = []
    sets.append(DashboardRoutes())  # /ui/: the dashboard (controller/http/ui)
    return sets
