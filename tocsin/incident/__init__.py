"""The incident, outside its workflow: what it carries and how the rest of Tocsin talks to it.

contracts  IncidentInput, IncidentState, the timeline, alerts and deliveries: the models in its history
updates    the requests people send it (acknowledge, escalate, mitigate, resolve, annotate, set_severity)
bounds     pure caps on what it keeps (alerts, timeline, carried bytes) and what it folds
client     opening, signalling, updating and querying incidents through Temporal's client
"""
