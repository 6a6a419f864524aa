"""The custom search attributes operators filter on in the Web UI and `temporal workflow list --query`.

Values are stored unencrypted on the server: only severities, statuses, service names and levels, never
personal data or alert text.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.service import RPCError, RPCStatusCode

SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
SERVICE = SearchAttributeKey.for_keyword("IncidentService")
LEVEL = SearchAttributeKey.for_int("EscalationLevel")

ALL = (SEVERITY, STATUS, SERVICE, LEVEL)


_CLI_TYPE = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
}


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    return [arg for key in ALL for arg in ("--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type]}")]


async def register(client: Client, namespace: str) -> list[str]:
    """Register the missing attributes on a server Tocsin did not start (idempotent). Returns what was added."""
    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        present = set(listed.custom_attributes)
    except RPCError as err:
        # The time-skipping test server can add attributes but not list them.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        present = set()
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in ALL if key.name not in present
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


def initial(severity: str, status: str, service: str, level: int) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SEVERITY, severity),
            SearchAttributePair(STATUS, status),
            SearchAttributePair(SERVICE, service),
            SearchAttributePair(LEVEL, level),
        ]
    )
