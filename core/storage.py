"""Where the results live: a local folder or ``s3://bucket/prefix``, as one ``pyarrow.fs`` filesystem.

An S3 location uses the standard AWS credential chain (environment, profile, instance role), the
region of ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (or the profile) and the endpoint of
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (MinIO, moto, ...): pyarrow's ``S3FileSystem`` reads
the first three itself but not the endpoint variables, so they are passed on here. Nothing of the
credentials ever enters a message: a URI that carries them is refused, and what S3 answers is
scrubbed of them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from core.errors import InputError

S3 = "s3://"
_ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def location(value: str | os.PathLike[str]) -> str:
    """``value`` as a location string: a local path as given, or ``s3://bucket[/prefix]``.

    Raises:
        InputError: a URI of another scheme, or one with credentials or options in it.
    """
    text = os.fspath(value)
    if text.startswith("s3:/") and not text.startswith(S3):
        # pathlib (and so click.Path) collapses the '//' of a URI: 's3:/bucket/prefix' was one
        text = S3 + text.removeprefix("s3:/")
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if not text.startswith(S3) or not parts.netloc:
        raise InputError(
            f"'{parts.scheme}://{parts.netloc}...' is not a local folder or s3://bucket/prefix",
            field="results_dir",
            fix="give a local folder or an S3 URI such as s3://my-bucket/results",
        )
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise InputError(  # never echoed: it may hold a key
            "an S3 URI with credentials or options in it is refused",
            field="results_dir",
            fix="give s3://bucket/prefix alone; credentials come from the AWS chain (AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY, a profile or a role), the endpoint from AWS_ENDPOINT_URL_S3 "
            "and the region from AWS_REGION",
        )
    return f"{S3}{parts.netloc}{parts.path.rstrip('/')}"


def open_location(where: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a :func:`location` and its base path within it.

    Builds no connection: S3 is first reached by the first read or write.
    """
    if not where.startswith(S3):
        return pafs.LocalFileSystem(), str(Path(where))
    # allow_delayed_open: a small object is one PUT instead of a three-request multipart upload
    return pafs.S3FileSystem(endpoint_override=endpoint(), allow_delayed_open=True), where.removeprefix(S3)


def endpoint() -> str | None:
    """The S3 endpoint the AWS variables name (``None``: AWS itself)."""
    return next((os.environ[name] for name in _ENDPOINT_ENV if os.environ.get(name)), None)


#: what an AWS error code means for a store, and its fix ({bucket}, {where}, {endpoint} filled in)
_PROBLEMS = {
    "NETWORK_CONNECTION": (
        "cannot reach the S3 endpoint {endpoint}",
        "check the network, and AWS_ENDPOINT_URL_S3 if you use an S3-compatible server",
    ),
    "NO_SUCH_BUCKET": (
        "the bucket '{bucket}' does not exist",
        "create it (aws s3 mb s3://{bucket}) or name an existing bucket in results_dir",
    ),
    "ACCESS_DENIED": (
        "access denied to these AWS credentials",
        "grant them s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on {where}, "
        "use other credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) or choose another results_dir",
    ),
    "INVALID_ACCESS_KEY_ID": (
        "S3 does not know these AWS credentials",
        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile (AWS_PROFILE)",
    ),
    "SIGNATURE_DOES_NOT_MATCH": (
        "S3 refused the signature of these AWS credentials",
        "check AWS_SECRET_ACCESS_KEY, or the profile (AWS_PROFILE)",
    ),
    "MOVED": ("the bucket '{bucket}' is in another region", "set AWS_REGION to the bucket's region"),
}


def refusal(where: str, action: str, exc: OSError) -> InputError:
    """What an ``OSError`` of an action on the store at ``where`` means, and the fix.

    Args:
        where: the store's :func:`location`.
        action: what failed, for the message ("write a probe object to").
        exc: the error pyarrow raised.
    """
    text = _scrub(str(exc))
    if not where.startswith(S3):
        return InputError(
            f"cannot {action} results_dir {where}: {exc.strerror or text}",
            field="results_dir",
            fix="choose a folder this user can create and write, or fix its permissions",
        )
    code = re.search(r"AWS Error ([A-Z_]+)", text)
    status = re.search(r"HTTP status (\d+)", text)
    kind = {"403": "ACCESS_DENIED", "301": "MOVED"}.get(status.group(1) if status else "", "")
    kind = kind or (code.group(1) if code else "")
    what, fix = _PROBLEMS.get(kind, ("S3 answered: {text}", "check results_dir and the AWS settings"))
    values = {"bucket": where.removeprefix(S3).split("/")[0], "where": where, "text": text}
    values["endpoint"] = _host(endpoint()) or "of AWS"
    return InputError(
        f"cannot {action} results_dir {where}: {what.format(**values)}",
        field="results_dir",
        fix=fix.format(**values),
    )


def _host(url: str | None) -> str | None:
    """An endpoint URL without any user or password in it."""
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"//{url}")
    return f"{parts.scheme + '://' if parts.scheme else ''}{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _scrub(text: str) -> str:
    """``text`` without the values of the AWS credential variables (an error may quote a header)."""
    for name in _SECRET_ENV:
        if secret := os.environ.get(name):
            text = text.replace(secret, "***")
    return text


def write_object(uri: str, data: bytes) -> None:
    """Write ``data`` as the whole object (or file) at ``uri``, replacing it (an S3 PUT is atomic)."""
    fs, path = open_location(location(uri))
    if isinstance(fs, pafs.LocalFileSystem):
        fs.create_dir(path.rpartition("/")[0])
    with fs.open_output_stream(path) as out:
        out.write(data)


def read_object(uri: str) -> bytes:
    """The whole object (or file) at ``uri``."""
    fs, path = open_location(location(uri))
    with fs.open_input_stream(path) as stream:
        return bytes(stream.read())


def delete_object(uri: str) -> None:
    """Delete the object at ``uri``; one already gone is not an error."""
    fs, path = open_location(location(uri))
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass
