"""The incident workflow: IncidentWorkflow (workflow.py) and the parts it is made of, each a module that does its
share on the shared IncidentCore (core.py): deliveries, escalation, storm membership, runbooks, the response
workflow's actions, people's requests, closing. Nothing here does I/O; every side effect is an activity."""

from workflows.incident.workflow import IncidentWorkflow

__all__ = ["IncidentWorkflow"]
