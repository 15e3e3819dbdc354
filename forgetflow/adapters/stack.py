"""Pre-flight checks of the configured stack: databases answer, the S3 bucket exists (created
when missing) and the credentials may write to it, all BEFORE a command writes anything.

Without these checks a wrong setting surfaces late and half-way: MLflow retries an unreachable
database for minutes, and a DVC push with bad credentials fails after a data version was
committed locally. Every error names the setting to fix.
"""

from __future__ import annotations

import re

from forgetflow.adapters.workspace import S3Settings, Workspace, s3_settings

DB_CONNECT_TIMEOUT_S = 5
# S3 bucket naming rules (the subset every S3 implementation accepts)
BUCKET_NAME = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PROBE_KEY = ".forgetflow-write-check"


class StackError(RuntimeError):
    """A configured service is unreachable or refuses us; the message names the setting."""


def redact(url: str) -> str:
    """The URL without its password, for error messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a database URL (http, s3, ...): mask user:password@ by hand
        return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


def connect_args(url: str) -> dict[str, int]:
    """A bounded connect timeout for server databases (libpq waits forever by default)."""
    return {"connect_timeout": DB_CONNECT_TIMEOUT_S} if url.startswith("postgresql") else {}


def check_database(url: str, setting: str) -> None:
    """Open and close one connection to a server database (SQLite files need no check)."""
    if url.startswith("sqlite") or "://" not in url or url.split(":", 1)[0] in (
            "http", "https", "file", "databricks"):
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    try:
        engine = create_engine(url, connect_args=connect_args(url))
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StackError(f"{setting} is not a usable database URL ({redact(url)}): {exc}"
                         ) from exc
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StackError(f"{setting}: cannot connect to {redact(url)}: {reason}") from exc
    finally:
        engine.dispose()


def s3_client(s3: S3Settings):
    """A boto3 client for the configured endpoint, with the AWS_* variables as they are now
    (a fresh session: boto3's default one keeps the first credentials it resolved)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client("s3", endpoint_url=s3.endpoint_url,
                        config=Config(connect_timeout=5, read_timeout=30,
                                      retries={"max_attempts": 2}))


def _credential_error(client, bucket: str, exc: Exception) -> StackError:
    """Tell wrong credentials apart from a bucket someone else owns."""
    from botocore.exceptions import ClientError

    try:
        client.list_buckets()
    except ClientError as inner:
        code = inner.response.get("Error", {}).get("Code", "")
        if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
            return StackError(f"AWS_ACCESS_KEY_ID is not known to the S3 endpoint ({code})")
        if code == "SignatureDoesNotMatch":
            return StackError("AWS_SECRET_ACCESS_KEY does not match AWS_ACCESS_KEY_ID "
                              "(SignatureDoesNotMatch)")
    return StackError(f"access to S3 bucket {bucket!r} is denied for AWS_ACCESS_KEY_ID "
                      f"(FORGETFLOW_S3_URL / FORGETFLOW_S3_BUCKET): {exc}")


def ensure_bucket(s3: S3Settings) -> bool:
    """Create the bucket when missing and prove we may write to it; True when created."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if not BUCKET_NAME.match(s3.bucket) or ".." in s3.bucket:
        raise StackError(f"invalid S3 bucket name {s3.bucket!r} (FORGETFLOW_S3_URL / "
                         "FORGETFLOW_S3_BUCKET): 3-63 lowercase letters, digits, '.' or '-'")
    endpoint = s3.endpoint_url or "the default AWS endpoint"
    client = s3_client(s3)
    created = False
    try:
        try:
            client.head_bucket(Bucket=s3.bucket)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (401, 403):
                raise _credential_error(client, s3.bucket, exc) from exc
            if status != 404:
                raise
            client.create_bucket(Bucket=s3.bucket)
            created = True
        client.put_object(Bucket=s3.bucket, Key=PROBE_KEY, Body=b"ok")
        client.delete_object(Bucket=s3.bucket, Key=PROBE_KEY)
    except StackError:
        raise
    except NoCredentialsError as exc:
        raise StackError("S3 is switched on but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are "
                         "not set") from exc
    except EndpointConnectionError as exc:
        raise StackError(f"MLFLOW_S3_ENDPOINT_URL: cannot reach the S3 endpoint {endpoint}: "
                         f"{exc}") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            raise _credential_error(client, s3.bucket, exc) from exc
        raise StackError(f"S3 bucket {s3.bucket!r} at {endpoint} (FORGETFLOW_S3_URL): {exc}"
                         ) from exc
    except (BotoCoreError, ValueError) as exc:
        raise StackError(f"MLFLOW_S3_ENDPOINT_URL ({endpoint}) is not usable: {exc}") from exc
    return created


def check_stack(ws: Workspace, *, s3: bool = True) -> None:
    """Every configured service, cheapest first: the ledger, MLflow's store, the bucket."""
    check_database(ws.ledger_url, "FORGETFLOW_DB_URL")
    check_database(ws.mlflow_tracking_uri, "MLFLOW_TRACKING_URI")
    settings = s3_settings_checked()
    if s3 and settings is not None:
        ensure_bucket(settings)


def s3_settings_checked() -> S3Settings | None:
    try:
        return s3_settings()
    except ValueError as exc:
        raise StackError(str(exc)) from exc
