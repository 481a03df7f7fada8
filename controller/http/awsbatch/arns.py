"""AWS Batch ARNs <-> shoal names: arn:aws:batch:REGION:ACCOUNT:KIND/NAME.

Requests may name a queue, a compute environment or a job definition by name or by ARN (as AWS
allows); scheduling policies only by ARN (AWS's fields for them are ARNs: `arn`,
`schedulingPolicyArn`); responses carry ARNs built from the controller's `--aws-region` and
`--aws-account-id`. An ARN of another region or account names nothing here, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal import errors

JOB_QUEUE = "job-queue"
COMPUTE_ENVIRONMENT = "compute-environment"
JOB_DEFINITION = "job-definition"
JOB = "job"
SCHEDULING_POLICY = "scheduling-policy"
KINDS = (JOB_QUEUE, COMPUTE_ENVIRONMENT, JOB_DEFINITION, JOB, SCHEDULING_POLICY)


@dataclass(frozen=True)
class Arns:
    region: str = "us-east-1"
    account: str = "000000000000"

    def make(self, kind: str, name: str) -> str:
        return f"arn:aws:batch:{self.region}:{self.account}:{kind}/{name}"

    def queue(self, name: str) -> str:
        return self.make(JOB_QUEUE, name)

    def env(self, name: str) -> str:
        return self.make(COMPUTE_ENVIRONMENT, name)

    def definition(self, name: str, revision: int) -> str:
        return self.make(JOB_DEFINITION, f"{name}:{revision}")

    def job(self, job_id: str) -> str:
        return self.make(JOB, job_id)

    def policy(self, name: str) -> str:
        return self.make(SCHEDULING_POLICY, name)

    def split(self, value: str, field: str) -> tuple[str, str]:
        """(kind, name) of an ARN of this region and account."""
        parts = value.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "batch" or "/" not in parts[5]:
            raise errors.InvalidArgument(f"{field}: '{value}' is not an AWS Batch ARN (arn:aws:batch:REGION:ACCOUNT:KIND/NAME)")
        if parts[3] != self.region or parts[4] != self.account:
            raise errors.InvalidArgument(
                f"{field}: '{value}' is in region '{parts[3]}' account '{parts[4]}'; this cluster is region "
                f"'{self.region}' account '{self.account}' (controller --aws-region/--aws-account-id)"
            )
        kind, _, name = parts[5].partition("/")
        if kind not in KINDS:
            raise errors.InvalidArgument(f"{field}: '{value}' names a {kind}, which shoal does not have")
        return kind, name

    def name(self, value: str, kind: str, field: str) -> str:
        """A name given as is or as an ARN of `kind`."""
        if not value.startswith("arn:"):
            return value
        got, name = self.split(value, field)
        if got != kind:
            raise errors.InvalidArgument(f"{field}: '{value}' is a {got} ARN, not a {kind} ARN")
        return name

    def arn_name(self, value: str, kind: str, field: str) -> str:
        """The name in an ARN of `kind` (a bare name is refused: the field takes an ARN)."""
        if not value.startswith("arn:"):
            raise errors.InvalidArgument(
                f"{field}: '{value}' is not an ARN; give {self.make(kind, value)}"
            )
        return self.name(value, kind, field)
