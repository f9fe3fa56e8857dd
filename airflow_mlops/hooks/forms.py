"""The connection forms' extra fields for Airflow 3.1, built from ``provider_info``'s ``conn-fields``.

Airflow 3.1 asks each hook for its form fields (``get_connection_form_widgets``) and builds them
with WTForms and Flask-AppBuilder, stubbed by the API server when they are not installed; 3.2 and
later read ``conn-fields`` from the provider info and no longer call the hook. Imported only by
that hook method.
"""

from __future__ import annotations

from typing import Any

from airflow_mlops.provider_info import get_provider_info


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """The extra fields of ``conn_type``'s form as WTForms fields (a password field when the
    ``conn-fields`` entry is sensitive)."""
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import PasswordField, StringField

    for entry in get_provider_info()["connection-types"]:
        if entry["connection-type"] == conn_type:
            return {
                name: (PasswordField if spec.get("sensitive") else StringField)(
                    lazy_gettext(spec["label"]),
                    widget=BS3PasswordFieldWidget() if spec.get("sensitive") else BS3TextFieldWidget(),
                    description=spec.get("description", ""),
                )
                for name, spec in entry.get("conn-fields", {}).items()
            }
    return {}
