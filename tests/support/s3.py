"""moto's S3 server over HTTP, and the standard AWS variables pointing pyarrow and boto3 at it.

Import the fixtures where they are used (``from tests.support.s3 import s3, s3_server``). The
server is started once per test process; each test gets the variables and makes its own buckets.
moto keeps one state per process, shared with ``tests.support.braket_env``'s server: bucket names
are unique so that the two never meet.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
#: fake credentials: moto accepts any until IAM is enforced (see :meth:`S3.enforcing`)
KEY_ID, SECRET = "testing-key-id", "testing-secret-key"
# Variables that would send the SDKs elsewhere: a developer's profile, session or endpoint.
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port: its URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass(frozen=True)
class S3:
    """The server, as a test uses it: new buckets, what a bucket holds, IAM enforced."""

    endpoint: str

    def client(self, **credentials: str) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, **credentials)

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"results-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> set[str]:
        """Every object of ``bucket``, folder markers (``prefix/``) included."""
        listing = self.client().list_objects_v2(Bucket=bucket)
        return {o["Key"] for o in listing.get("Contents", [])}

    def user(self, *actions: str) -> tuple[str, str]:
        """Credentials of a new IAM user allowed these S3 actions (``s3:Get*``...), and no other."""
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name=REGION)
        name = f"user-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        policy = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
        iam.put_user_policy(
            UserName=name,
            PolicyName="read-only",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [policy]}),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    @contextmanager
    def enforcing(self) -> Iterator[None]:
        """moto checks every request against IAM (for the whole process) inside the block."""
        requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        try:
            yield
        finally:
            requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The AWS variables point at moto (fake credentials, no profile, no instance metadata)."""
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": s3_server,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return S3(s3_server)
