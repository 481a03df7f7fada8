"""The AWS Batch edge answers every operation of botocore's own `batch` service model."""

from __future__ import annotations

import botocore.session
import pytest

from controller.http.awsbatch import unsupported
from controller.http.awsbatch.operations import HANDLERS, OPERATIONS, REFUSED, handlers
from controller.http.awsbatch.protocol import Router

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    return botocore.session.get_session().get_service_model("batch")


def test_every_operation_of_the_model_is_routed_as_the_model_says_and_has_a_handler(model) -> None:  # noqa: ANN001
    ours = {op.name: op for op in OPERATIONS}
    table = handlers()
    missing = [name for name in model.operation_names if name not in ours or name not in table]
    assert not missing, f"operations of botocore's batch model with no handler: {missing}"
    for name in model.operation_names:
        http = model.operation_model(name).http
        assert (ours[name].method, ours[name].uri) == (http["method"], http["requestUri"]), name
    assert set(ours) == set(model.operation_names), "operations routed that the model does not have"


def test_implemented_and_refused_operations_do_not_overlap(model) -> None:  # noqa: ANN001
    assert not set(HANDLERS) & set(REFUSED)
    assert set(HANDLERS) | set(REFUSED) == set(model.operation_names)


def test_router_finds_each_operation_by_the_path_botocore_sends(model) -> None:  # noqa: ANN001
    router = Router(OPERATIONS)
    arn = "arn%3Aaws%3Abatch%3Aus-east-1%3A000000000000%3Ajob-queue%2Fq1"
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].replace("{resourceArn}", arn)
        found = router.match(http["method"], path)
        assert found is not None and found[0].name == name, name
        if "{" in http["requestUri"]:
            assert found[1] == {"resourceArn": "arn:aws:batch:us-east-1:000000000000:job-queue/q1"}
    assert router.match("GET", "/v1/submitjob") is None
    assert router.match("POST", "/v1/nosuchoperation") is None


def _member_paths(shape, prefix: str = "", depth: int = 0) -> set[str]:  # noqa: ANN001
    paths: set[str] = set()
    if depth > 8:
        return paths
    if shape.type_name == "list":
        return _member_paths(shape.member, prefix, depth + 1)
    if shape.type_name != "structure":
        return paths
    for name, member in shape.members.items():
        path = f"{prefix}.{name}" if prefix else name
        paths.add(path)
        paths |= _member_paths(member, path, depth + 1)
    return paths


def test_every_field_in_the_unsupported_table_is_a_field_of_some_request(model) -> None:  # noqa: ANN001
    """A typo in the table would give a refusal its generic reason; catch it here."""
    known: set[str] = set()
    for name in model.operation_names:
        shape = model.operation_model(name).input_shape
        if shape is not None:
            known |= _member_paths(shape)
    table = set(unsupported._COMMON) | {p for per in unsupported._BY_OPERATION.values() for p in per}
    assert sorted(table - known) == []
