"""Azure Machine Learning hook: an ``MLClient`` for one workspace (extra ``azure``).

The official Microsoft Azure provider has no Azure ML support; this hook fills the gap for
training jobs. The SDK is imported inside methods, so importing this module stays light.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_mlops.exceptions import MlopsError, require_extra

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential

_REQUIRED_EXTRAS = ("subscription_id", "resource_group", "workspace_name")


class AzureMLHook(BaseHook):
    """
    Interact with an Azure Machine Learning workspace through ``azure.ai.ml.MLClient``.

    Authentication: a service principal when the connection has a client id (login), a client
    secret (password) and ``tenant_id``; otherwise ``DefaultAzureCredential`` (managed identity,
    workload identity, environment variables, Azure CLI login ...).

    :param azure_ml_conn_id: connection of type ``azure_ml``; extras ``tenant_id``,
        ``subscription_id``, ``resource_group``, ``workspace_name`` (the last three required).
    """

    conn_name_attr = "azure_ml_conn_id"
    default_conn_name = "azure_ml_default"
    conn_type = "azure_ml"
    hook_name = "Azure Machine Learning"

    def __init__(self, azure_ml_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.azure_ml_conn_id = azure_ml_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form, as declared once in ``provider_info``."""
        from airflow_mlops.provider_info import ui_field_behaviour

        return ui_field_behaviour(cls.conn_type)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields on Airflow 3.1, from the ``conn-fields`` of ``provider_info``."""
        from airflow_mlops.hooks.forms import connection_form_widgets

        return connection_form_widgets(cls.conn_type)

    @cached_property
    def _connection(self) -> Any:
        return self.get_connection(self.azure_ml_conn_id)

    def _extra(self, key: str) -> str | None:
        value = self._connection.extra_dejson.get(key)
        return (str(value).strip() or None) if value is not None else None

    @cached_property
    def workspace(self) -> dict[str, str]:
        """``subscription_id``, ``resource_group`` and ``workspace_name`` of the connection."""
        values = {key: self._extra(key) for key in _REQUIRED_EXTRAS}
        missing = [key for key, value in values.items() if not value]
        if missing:
            raise MlopsError(
                f"connection {self.azure_ml_conn_id!r} lacks {', '.join(missing)}: set them in the "
                "connection's extra (Subscription ID / Resource group / Workspace name in the form)"
            )
        return values  # type: ignore[return-value]

    def get_credential(self) -> TokenCredential:
        """Service principal when the connection holds one, else ``DefaultAzureCredential``."""
        require_extra("azure.identity", "The Azure ML hook", "azure")
        conn = self._connection
        tenant_id = self._extra("tenant_id")
        if conn.login:
            if not (conn.password and tenant_id):
                raise MlopsError(
                    f"connection {self.azure_ml_conn_id!r} has a client id but no "
                    f"{'client secret' if not conn.password else 'tenant_id'}: a service principal needs "
                    "client id, client secret and tenant id (or leave the client id blank for "
                    "DefaultAzureCredential)"
                )
            from azure.identity import ClientSecretCredential

            self.log.info("Azure ML: service principal %s of tenant %s", conn.login, tenant_id)
            return ClientSecretCredential(
                tenant_id=tenant_id, client_id=conn.login, client_secret=conn.password
            )
        from azure.identity import DefaultAzureCredential

        self.log.info("Azure ML: no client id on %s, using DefaultAzureCredential", self.azure_ml_conn_id)
        return DefaultAzureCredential()

    def get_conn(self) -> MLClient:
        """An ``MLClient`` bound to the connection's workspace (created once per hook)."""
        return self._client

    @cached_property
    def _client(self) -> MLClient:
        require_extra("azure.ai.ml", "The Azure ML hook", "azure")
        from azure.ai.ml import MLClient

        ws = self.workspace
        return MLClient(
            credential=self.get_credential(),
            subscription_id=ws["subscription_id"],
            resource_group_name=ws["resource_group"],
            workspace_name=ws["workspace_name"],
        )

    def test_connection(self) -> tuple[bool, str]:
        """Used by the Test button of the connection form: reads the workspace."""
        try:
            ws = self.workspace
            workspace = self.get_conn().workspaces.get(ws["workspace_name"])
        except Exception as err:
            return False, f"Cannot reach Azure ML workspace: {type(err).__name__}: {err}"
        return True, (
            f"Connected to Azure ML workspace {workspace.name} "
            f"(resource group {ws['resource_group']}, subscription {ws['subscription_id']})"
        )
