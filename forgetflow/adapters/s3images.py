"""An S3 prefix as an image store: list it, download each object once (cached by ETag).

Credentials and the endpoint come from the same variables as the rest of the stack
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, MLFLOW_S3_ENDPOINT_URL or AWS_ENDPOINT_URL), and a
refused bucket is reported the same way: which setting to fix.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path

from forgetflow.adapters.stack import BUCKET_NAME, StackError, _credential_error, s3_client
from forgetflow.adapters.workspace import S3Settings
from forgetflow.core.data.images import StoredFile, safe_name
from forgetflow.core.data.sources import DataSourceError


def parse_s3_source(spec: str) -> S3Settings:
    """`s3://bucket/prefix` (the prefix holds train/, test/ and optionally subjects.csv)."""
    bucket, _, prefix = spec[len("s3://"):].partition("/")
    if not BUCKET_NAME.match(bucket):
        raise DataSourceError(f"data.source {spec!r}: {bucket!r} is not a valid bucket name")
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    return S3Settings(bucket, prefix.strip("/"), endpoint)


def s3_name(s3: S3Settings) -> str:
    """The dataset name: the prefix's last part (else the bucket), as for a folder."""
    return safe_name(s3.prefix.rsplit("/", 1)[-1] if s3.prefix else s3.bucket)


def list_s3(s3: S3Settings) -> list[StoredFile]:
    """Every object under the prefix, stamped with its ETag and size."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    client = s3_client(s3)
    base = f"{s3.prefix}/" if s3.prefix else ""
    files: list[StoredFile] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket,
                                                                     Prefix=base):
            for obj in page.get("Contents", []):
                rel = unicodedata.normalize("NFC", obj["Key"][len(base):])
                if rel and not rel.endswith("/"):
                    files.append(StoredFile(rel, f"s3://{s3.bucket}/{obj['Key']}",
                                            f"{obj['ETag'].strip(chr(34))}:{obj['Size']}"))
    except NoCredentialsError as exc:
        raise StackError("data.source is on S3 but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                         "are not set") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            raise DataSourceError(f"S3 bucket {s3.bucket!r} does not exist "
                                  f"(data.source, endpoint {s3.endpoint_url or 'AWS'})") from exc
        raise _credential_error(client, s3.bucket, exc) from exc
    except (BotoCoreError, ValueError) as exc:
        raise StackError(f"MLFLOW_S3_ENDPOINT_URL ({s3.endpoint_url or 'AWS'}) cannot serve "
                         f"data.source: {exc}") from exc
    if not any(f.path.startswith(("train/", "test/")) for f in files):
        raise DataSourceError(f"s3://{s3.bucket}/{s3.prefix} needs train/ and test/ prefixes "
                              "with one folder per class")
    return files


def s3_reader(s3: S3Settings, objects: Path) -> Callable[[StoredFile], bytes]:
    """Read an object's bytes, downloading it once into `objects` (keyed by key and ETag)."""
    client = s3_client(s3)
    objects.mkdir(parents=True, exist_ok=True)

    def read(f: StoredFile) -> bytes:
        cached = objects / hashlib.sha256(f"{f.location}\0{f.stamp}".encode()).hexdigest()
        if cached.is_file():
            return cached.read_bytes()
        bucket, _, key = f.location[len("s3://"):].partition("/")
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        partial = cached.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(body)
        partial.replace(cached)
        return body

    return read
