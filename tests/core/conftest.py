from __future__ import annotations

from tests.support.s3 import s3, s3_server  # noqa: F401 - pytest fixtures
