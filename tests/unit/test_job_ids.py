"""Job ids made in bulk are canonical random version-4 UUIDs, as the API promises."""

from __future__ import annotations

import uuid

import pytest

from controller.domain.validation import validate_job_id
from controller.services.jobs import _job_ids

pytestmark = pytest.mark.unit


def test_bulk_job_ids_are_canonical_distinct_uuid4s() -> None:
    ids = _job_ids(5000)
    assert len(set(ids)) == 5000
    for job_id in ids:
        validate_job_id(job_id, "job_id")
        parsed = uuid.UUID(job_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, job_id)
    assert _job_ids(0) == []
