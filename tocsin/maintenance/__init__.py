"""Maintenance windows: while one matches an incident, nobody is paged; when it ends, a still-firing incident
pages once (catch-up). contracts, windows (pure), client (the registry workflow from outside)."""
