"""Scheduling policies (fair share): Create/Update/Delete/Describe/ListSchedulingPolicies.

AWS names a policy by ARN in every request but CreateSchedulingPolicy
(`arn:aws:batch:REGION:ACCOUNT:scheduling-policy/NAME`); shoal.v1 by name. The fairsharePolicy
maps field for field onto shoal.v1's FairsharePolicy (validation is the gRPC path's). An omitted
weightFactor is 1.0, as AWS documents.
"""

from __future__ import annotations

from typing import Any

from controller.http.awsbatch import arns as A
from controller.http.awsbatch import shapes
from controller.http.awsbatch.jsonbody import Obj
from controller.http.awsbatch.protocol import Call
from shoal import errors
from shoal.v1 import batch_pb2, types_pb2

MAX_DESCRIBE = 100


def fairshare_policy(b: Obj) -> types_pb2.FairsharePolicy:
    p = types_pb2.FairsharePolicy(
        share_decay_seconds=b.int("shareDecaySeconds", minimum=0) or 0,
        compute_reservation=b.int("computeReservation", minimum=0) or 0,
    )
    for entry in b.objs("shareDistribution"):
        weight = entry.number("weightFactor")
        p.share_distribution.add(
            share_identifier=entry.str("shareIdentifier", required=True), weight_factor=1.0 if weight is None else weight
        )
        entry.done()
    b.done()
    return p


def _policy_name(c: Call, key: str = "arn") -> str:
    return c.arns.arn_name(c.body.str(key, required=True), A.SCHEDULING_POLICY, key)


async def create_scheduling_policy(c: Call) -> dict[str, Any]:
    b = c.body
    req = batch_pb2.CreateSchedulingPolicyRequest(name=b.str("name", required=True), tags=b.str_map("tags"))
    fair = b.obj("fairsharePolicy")
    b.done()
    if fair is None:
        raise errors.InvalidArgument(
            "fairsharePolicy: is required (shareDecaySeconds, computeReservation, shareDistribution; {} for the defaults)"
        )
    req.fairshare_policy.CopyFrom(fairshare_policy(fair))
    policy = await c.call("CreateSchedulingPolicy", req)
    return {"name": policy.name, "arn": c.arns.policy(policy.name)}


async def update_scheduling_policy(c: Call) -> dict[str, Any]:
    b = c.body
    req = batch_pb2.UpdateSchedulingPolicyRequest(name=_policy_name(c))
    fair = b.obj("fairsharePolicy")
    b.done()
    if fair is None:
        raise errors.InvalidArgument("fairsharePolicy: is required (it replaces the policy's whole fairsharePolicy)")
    req.fairshare_policy.CopyFrom(fairshare_policy(fair))
    await c.call("UpdateSchedulingPolicy", req)
    return {}


async def delete_scheduling_policy(c: Call) -> dict[str, Any]:
    name = _policy_name(c)
    c.body.done()
    await c.call("DeleteSchedulingPolicy", batch_pb2.DeleteSchedulingPolicyRequest(name=name))
    return {}


async def describe_scheduling_policies(c: Call) -> dict[str, Any]:
    b = c.body
    arns = b.str_list("arns", required=True)
    if len(arns) > MAX_DESCRIBE:
        raise errors.InvalidArgument(f"arns: at most {MAX_DESCRIBE} per call (got {len(arns)})")
    names = [c.arns.arn_name(arn, A.SCHEDULING_POLICY, f"arns[{i}]") for i, arn in enumerate(arns)]
    b.done()
    if not names:
        return {"schedulingPolicies": []}
    resp = await c.call("DescribeSchedulingPolicies", batch_pb2.DescribeSchedulingPoliciesRequest(names=names))
    return {"schedulingPolicies": [shapes.scheduling_policy(p, c.arns) for p in resp.scheduling_policies]}


async def list_scheduling_policies(c: Call) -> dict[str, Any]:
    b = c.body
    size = b.int("maxResults", minimum=1) or 100
    if size > 100:
        raise errors.InvalidArgument(f"maxResults: at most 100 (got {size})")
    token = b.str("nextToken")
    b.done()
    resp = await c.call("DescribeSchedulingPolicies", batch_pb2.DescribeSchedulingPoliciesRequest())
    names = sorted(p.name for p in resp.scheduling_policies)
    # The token is the last name listed: a policy created or deleted between pages neither
    # shifts the rest nor is listed twice.
    if token and not token.startswith("after:"):
        raise errors.InvalidArgument("nextToken: not a token this API returned")
    after = token.removeprefix("after:")
    rest = [n for n in names if n > after] if token else names
    out: dict[str, Any] = {"schedulingPolicies": [{"arn": c.arns.policy(n)} for n in rest[:size]]}
    if len(rest) > size:
        out["nextToken"] = "after:" + rest[size - 1]
    return out
