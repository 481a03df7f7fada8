"""AWS Batch's own wire API on the controller's HTTP edge: boto3 and `aws batch` unchanged.

protocol.py routes restJson1 requests and shapes AWS errors; sigv4.py verifies signatures
against credentials.py's access keys; jobs.py, catalog.py, policies.py (scheduling policies)
and tags.py translate AWS JSON to the shoal.v1 request messages and call the gRPC servicer's own
methods (controller/http/server.py `ApiCaller`), so validation, roles and redaction are the gRPC
path's; shapes.py encodes the answers; arns.py maps names and ARNs; unsupported.py is the table
of what is refused, and why.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from aiohttp import web

from controller.api import auth
from controller.http.awsbatch.credentials import AccessKeyTable
from controller.http.awsbatch.operations import OPERATIONS, handlers
from controller.http.awsbatch.protocol import AwsBatchEdge, AwsOptions, Router
from shoal import errors, log

__all__ = ["AwsBatchRoutes", "AwsOptions", "add_arguments", "options_from_args"]

logger = log.get("controller.http.awsbatch")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+|[a-z][a-z0-9-]{1,30}")
_ACCOUNT = re.compile(r"\d{12}")


class AwsBatchRoutes:
    """RouteSet: every path under /v1/ goes to the AWS Batch edge."""

    def __init__(self, edge: auth.EdgeOptions) -> None:
        options = getattr(edge, "aws_api", None) or AwsOptions()
        self.edge = AwsBatchEdge(Router(OPERATIONS), handlers(), options, edge)
        if options.keys is None and edge.tokens is not None:
            logger.warning("aws.no_credentials", hint="--tokens-file without --aws-credentials-file: every AWS API request is refused")

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/v1/{tail:.*}", self.edge.dispatch)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("AWS Batch API (on --http-listen)")
    g.add_argument("--aws-credentials-file", default="", metavar="FILE",
                   help="YAML list of {name, access_key_id, secret_access_key, role}: every request must be SigV4-signed "
                   "with one of these keys; without it requests are not verified (allowed only while gRPC has no --tokens-file)")
    g.add_argument("--aws-region", default="us-east-1", metavar="REGION",
                   help="region clients sign for and ARNs carry (default %(default)s)")
    g.add_argument("--aws-account-id", default="000000000000", metavar="ID",
                   help="12-digit account id in the ARNs (default %(default)s)")


def options_from_args(ns: Any) -> AwsOptions:
    if not _REGION.fullmatch(ns.aws_region):
        raise SystemExit(f"shoal controller: --aws-region: not a region name (got {ns.aws_region!r})")
    if not _ACCOUNT.fullmatch(ns.aws_account_id):
        raise SystemExit(f"shoal controller: --aws-account-id must be 12 digits (got {ns.aws_account_id!r})")
    keys = None
    if ns.aws_credentials_file and not getattr(ns, "http_listen", ""):
        raise SystemExit("shoal controller: --aws-credentials-file needs --http-listen (the AWS API is served there)")
    if ns.aws_credentials_file:
        try:
            keys = AccessKeyTable.load(ns.aws_credentials_file)
        except errors.ShoalError as err:
            raise SystemExit(f"shoal controller: {err.message}") from None
    return AwsOptions(region=ns.aws_region, account=ns.aws_account_id, keys=keys)
