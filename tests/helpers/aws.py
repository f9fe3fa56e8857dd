"""A moto server on 127.0.0.1 standing in for AWS (S3, SageMaker, CloudWatch ...), reached through
the ``aws_default`` connection and the default credential chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers.fixtures import free_port

ACCOUNT = "123456789012"
REGION = "us-east-1"


@contextmanager
def moto_server(mp: pytest.MonkeyPatch, region: str = REGION) -> Iterator[str]:
    """Start a ``ThreadedMotoServer`` on a free port of 127.0.0.1, point ``aws_default`` (and the
    default credential chain, which fsspec's s3fs uses) at it, yield its URL, stop it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    url = f"http://127.0.0.1:{port}"
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": url, "region_name": region},
    }
    mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    for key, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
    }.items():
        mp.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        mp.delenv(key, raising=False)
    server.start()
    try:
        yield url
    finally:
        server.stop()
