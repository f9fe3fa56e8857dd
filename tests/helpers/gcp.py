"""Google Cloud without Google: the ``google_cloud_default`` connection on a project, and
anonymous credentials where the metadata server or a key file would give real ones."""

from __future__ import annotations

import json

import pytest


def fake_google_auth(monkeypatch: pytest.MonkeyPatch, project: str) -> None:
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"project": project}}),
    )
    # credentials come from the metadata server / key files in real life: the auth boundary
    monkeypatch.setattr(
        GoogleBaseHook, "get_credentials_and_project_id", lambda self: (AnonymousCredentials(), project)
    )
