"""SigV4 verification against requests signed the way boto3 signs them (botocore's own signer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from controller.http.awsbatch import sigv4
from controller.http.awsbatch.credentials import AccessKeyTable, CredentialsFileError

pytestmark = pytest.mark.unit

KEY, SECRET = "AKIASHOALTEST0001", "s3cr3t-s3cr3t-s3cr3t-s3cr3t"
HOST = "127.0.0.1:8000"


def signed(method: str = "POST", path: str = "/v1/submitjob", query: str = "", body: bytes = b'{"jobName": "a"}',
           secret: str = SECRET, region: str = "us-east-1", service: str = "batch") -> AWSRequest:
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY, secret), service, region).add_auth(request)
    return request


def received(request: AWSRequest, *, body: bytes | None = None, path: str | None = None, extra: dict | None = None) -> sigv4.SignedRequest:
    raw_path, _, raw_query = request.url.split(HOST, 1)[1].partition("?")
    headers = [("Host", HOST), *((k, v) for k, v in request.headers.items()), *(extra or {}).items()]
    return sigv4.SignedRequest(request.method, path or raw_path, raw_query, headers,
                               (request.body or b"") if body is None else body)


def check(req: sigv4.SignedRequest, now: datetime | None = None, region: str = "us-east-1") -> sigv4.Verified:
    return sigv4.verify(req, {KEY: SECRET}.get, region=region, service="batch", now=now or datetime.now(UTC))


def refusal(req: sigv4.SignedRequest, **kw) -> sigv4.SignatureError:  # noqa: ANN003
    with pytest.raises(sigv4.SignatureError) as err:
        check(req, **kw)
    return err.value


def test_a_request_signed_by_botocore_verifies() -> None:
    assert check(received(signed())).access_key_id == KEY


def test_paths_with_encoded_labels_and_repeated_query_keys_verify() -> None:
    arn = "arn%3Aaws%3Abatch%3Aus-east-1%3A000000000000%3Ajob%2Fabc%3A3"
    req = signed("DELETE", f"/v1/tags/{arn}", query="tagKeys=b%20c&tagKeys=a", body=b"")
    assert check(received(req)).access_key_id == KEY


def test_a_wrong_secret_is_an_invalid_signature() -> None:
    err = refusal(received(signed(secret="not-the-secret-at-all")))
    assert err.code == "InvalidSignatureException"
    assert "signature we calculated does not match" in err.message


@pytest.mark.parametrize("change", ["body", "path", "header"])
def test_anything_signed_that_changes_on_the_way_is_refused(change: str) -> None:
    req = signed()
    if change == "body":
        got = received(req, body=b'{"jobName": "b"}')
    elif change == "path":
        got = received(req, path="/v1/terminatejob")
    else:
        got = sigv4.SignedRequest(req.method, "/v1/submitjob", "",
                                  [("Host", "127.0.0.1:9999"), *req.headers.items()], req.body)
    assert refusal(got).code == "InvalidSignatureException"


def test_an_unknown_access_key_is_an_unrecognized_client() -> None:
    req = received(signed())
    with pytest.raises(sigv4.SignatureError) as err:
        sigv4.verify(req, {}.get, region="us-east-1", service="batch", now=datetime.now(UTC))
    assert err.value.code == "UnrecognizedClientException"


def test_no_authorization_header_is_a_missing_token() -> None:
    req = sigv4.SignedRequest("POST", "/v1/listjobs", "", [("Host", HOST)], b"{}")
    assert refusal(req).code == "MissingAuthenticationTokenException"


def test_a_request_too_far_from_the_server_clock_is_refused() -> None:
    req = received(signed())
    assert check(req, now=datetime.now(UTC) + timedelta(minutes=4)).access_key_id == KEY
    err = refusal(req, now=datetime.now(UTC) + timedelta(minutes=6))
    assert err.code == "InvalidSignatureException" and "Signature expired" in err.message
    assert "later" in refusal(req, now=datetime.now(UTC) - timedelta(minutes=6)).message


def test_the_scope_must_be_this_region_and_service() -> None:
    assert "region" in refusal(received(signed(region="eu-west-1"))).message
    assert "service" in refusal(received(signed(service="s3"))).message
    assert "region" in refusal(received(signed()), region="eu-west-1").message


def test_a_payload_hash_that_does_not_match_the_body_is_refused() -> None:
    req = received(signed(), extra={"X-Amz-Content-SHA256": sigv4.UNSIGNED_PAYLOAD})
    assert "x-amz-content-sha256" in refusal(req).message


def test_a_session_token_is_refused() -> None:
    req = received(signed(), extra={"X-Amz-Security-Token": "abc"})
    assert refusal(req).code == "UnrecognizedClientException"


def test_canonical_forms_follow_the_spec() -> None:
    assert sigv4.canonical_uri("/v1/tags/arn%3Aaws") == "/v1/tags/arn%253Aaws"
    assert sigv4.canonical_uri("/a/./b/../c") == "/a/c"
    assert sigv4.canonical_query("b=2&a=1&a=0&c") == "a=0&a=1&b=2&c="
    assert sigv4.canonical_query("k=a+b%2Fc") == "k=a%2Bb%2Fc"


# ---- the credentials file ----------------------------------------------------------------------


def test_credentials_file_maps_each_key_to_a_role() -> None:
    table = AccessKeyTable.parse(
        f"- {{name: ops, access_key_id: {KEY}, secret_access_key: {SECRET}, role: admin}}\n"
        "- {name: ci, access_key_id: AKIASHOALTEST0002, secret_access_key: another-secret-value, role: submitter}\n"
    )
    assert len(table) == 2
    assert table.secret(KEY) == SECRET and table.principal(KEY).role == "admin"
    assert table.principal("AKIASHOALTEST0002").name == "ci"
    assert table.secret("AKIAUNKNOWN00000") is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[]", "non-empty list"),
        ("- {name: a, access_key_id: short, secret_access_key: ssssssssssssssssss, role: admin}", "[0].access_key_id"),
        ("- {name: a, access_key_id: AKIASHOALTEST0001, secret_access_key: short, role: admin}", "[0].secret_access_key"),
        ("- {name: a, access_key_id: AKIASHOALTEST0001, secret_access_key: ssssssssssssssssss, role: root}", "[0].role"),
        ("- {name: a, access_key_id: AKIASHOALTEST0001, secret_access_key: ssssssssssssssssss, role: admin, x: 1}",
         "unknown key 'x'"),
        ("- {name: a, access_key_id: AKIASHOALTEST0001, secret_access_key: ssssssssssssssssss, role: admin}\n"
         "- {name: b, access_key_id: AKIASHOALTEST0001, secret_access_key: tttttttttttttttttt, role: admin}",
         "also given to 'a'"),
        ("- {name: a, access_key_id: AKIASHOALTEST0001, secret_access_key: ssssssssssssssssss, role: admin}\n"
         "- {name: a, access_key_id: AKIASHOALTEST0002, secret_access_key: tttttttttttttttttt, role: admin}",
         "listed twice"),
        ("{: bad", "not valid YAML"),
    ],
)
def test_bad_credentials_files_are_refused_naming_the_entry(text: str, words: str) -> None:
    with pytest.raises(CredentialsFileError) as err:
        AccessKeyTable.parse(text, "creds.yaml")
    assert words in str(err.value) and str(err.value).startswith("creds.yaml")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--aws-credentials-file", "x.yaml"], "--aws-credentials-file needs --http-listen"),
        (["--http-listen", "127.0.0.1:0", "--aws-credentials-file", "/nonexistent/x.yaml"], "cannot read /nonexistent/x.yaml"),
        (["--aws-account-id", "12"], "--aws-account-id must be 12 digits"),
        (["--aws-region", "Not A Region"], "--aws-region: not a region name"),
    ],
)
def test_controller_refuses_bad_aws_flags_before_starting(args: list[str], words: str) -> None:
    from controller.main import main

    with pytest.raises(SystemExit) as err:
        main(["--etcd", "127.0.0.1:1", *args])
    assert words in str(err.value)
