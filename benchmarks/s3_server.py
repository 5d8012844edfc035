"""moto's S3 server for a benchmark's ``s3://`` results: started in this process, on a free port.

The AWS variables are set as ``tests/support/s3.py`` sets them (fake credentials, no profile, no
instance metadata), in ``os.environ``, so every process started afterwards writes there too.
"""

from __future__ import annotations

import logging
import os
from typing import Any

REGION = "us-east-1"
# variables that would send the SDKs elsewhere: a developer's profile, session or endpoint
CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION")


def start_moto(bucket: str) -> tuple[Any, str]:
    """moto's S3 server on a free port, the AWS variables pointing at it, and ``bucket`` made:
    the server (``stop()`` it) and its URL."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise SystemExit(f"the S3 side needs moto[server] and boto3 (the test extra): {exc}") from exc
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing-key-id",
            "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=bucket)
    return server, endpoint
