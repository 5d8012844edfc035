"""Fixtures of the orchestrator's tests: moto's S3 server for results in an object store."""

from tests.support.s3 import s3, s3_server  # noqa: F401 - pytest fixtures
