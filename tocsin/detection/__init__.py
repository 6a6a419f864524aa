"""Detection without Alertmanager: the triggers' PromQL evaluated by Tocsin (contracts, evaluate), the schedule
that runs it, and the Prometheus rules and Alertmanager route exported from the policy."""
