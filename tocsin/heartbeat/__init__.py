"""Heartbeats, the dead man's switch: contracts shared by the receiver, the workflow and its activities."""
