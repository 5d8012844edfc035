"""The fake Braket service and moto's S3 server, wired into the environment the real SDK reads.

Use it as pytest fixtures (``pytest_plugins = ["tests.support.braket_env"]`` in a conftest) or as a
context manager in scripts and benchmarks::

    with BraketTestEnv() as env:          # sets AWS_ENDPOINT_URL_BRAKET / _S3, fake credentials
        env.admin.faults(create_rate=20)  # failure injection
        AwsDevice(SV1).run(circuit, (env.bucket, "tasks"), shots=100).result()

Child processes started inside the block inherit the environment and reach the same services.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from types import TracebackType

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.fake_braket import FakeBraket, FakeBraketAdmin, FakeBraketServer

BUCKET = "amazon-braket-orchestrator-tests"
REGION = "us-east-1"

# Variables that would send the SDK elsewhere (a real profile, a job context, a reservation).
_CLEARED = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "BRAKET_ENDPOINT",
    "AMZN_BRAKET_OUT_S3_BUCKET",
    "AMZN_BRAKET_TASK_RESULTS_S3_URI",
    "AMZN_BRAKET_JOB_TOKEN",
    "AMZN_BRAKET_RESERVATION_DEVICE_ARN",
    "AMZN_BRAKET_RESERVATION_TIME_WINDOW_ARN",
)


class BraketTestEnv:
    """Start moto S3 and the fake Braket on free ports, and point the AWS SDK at them.

    Args:
        bucket: S3 bucket created for task results.
        region: region for credentials and the default session.
    """

    def __init__(self, *, bucket: str = BUCKET, region: str = REGION) -> None:
        self.bucket, self.region = bucket, region
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._braket: FakeBraketServer | None = None
        self._saved: dict[str, str | None] = {}

    @property
    def fake(self) -> FakeBraket:
        """The in-process service state (faults, devices, counters)."""
        assert self._braket is not None, "start() first"
        return self._braket.fake

    @property
    def braket_url(self) -> str:
        assert self._braket is not None, "start() first"
        return self._braket.url

    @property
    def admin(self) -> FakeBraketAdmin:
        """The admin client (works from any process)."""
        return FakeBraketAdmin(self.braket_url)

    def start(self) -> BraketTestEnv:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every S3 request otherwise
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.s3_url = f"http://{host}:{port}"
        self._braket = FakeBraketServer(s3_endpoint=self.s3_url).start()
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # fake, for moto and the fake
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL_BRAKET": self.braket_url,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        for name in (*env, *_CLEARED):
            self._saved[name] = os.environ.get(name)
        for name in _CLEARED:
            os.environ.pop(name, None)
        os.environ.update(env)
        boto3.client("s3", region_name=self.region).create_bucket(Bucket=self.bucket)
        return self

    def reset(self) -> None:
        """Between tests: no faults, default devices, no tasks, zeroed counters."""
        self.fake.reset()

    def stop(self) -> None:
        if self._braket:
            self._braket.stop()
        self._moto.stop()
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> BraketTestEnv:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_shared: BraketTestEnv | None = None


@pytest.fixture(scope="session")
def braket_services(request: pytest.FixtureRequest) -> BraketTestEnv:
    """moto S3 + fake Braket, started once per test process (moto takes a second to start).

    Several conftest files may import this fixture; they all get the same services.
    """
    global _shared
    if _shared is None:
        _shared = BraketTestEnv().start()
        request.session.config.add_cleanup(_stop_shared)
    return _shared


def _stop_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@pytest.fixture
def braket_env(braket_services: BraketTestEnv) -> Iterator[BraketTestEnv]:
    """The shared services, reset to no faults and no tasks for this test."""
    from orchestrator.braket.aws import clear_sessions

    braket_services.reset()
    clear_sessions()  # sessions read endpoints when built; never reuse one built before the services
    yield braket_services
    braket_services.reset()
