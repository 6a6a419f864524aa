"""The post-mortem's evidence sources, one module each: metrics (Prometheus), logs (Loki), changes (GitHub),
pagerduty (PagerDuty's log entries) and incident (the incident's own timeline). `results` holds what they
share. Each returns a SourceResult and never raises for a problem with the system it asks; the activities
that call them are in activities/postmortem_gather.py.
"""
