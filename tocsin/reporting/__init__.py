"""`tocsin report`: response figures over a window of incidents (MTTA, MTTR, pages per person, out-of-hours
pages, incidents per day, escalation depth), computed from each incident's own record.

Everything here is pure except `gather` (the Temporal adapter that lists and reads incidents): the figures are
testable from hand-made IncidentStates, without a server. `facts` reads one incident, `summary` aggregates,
`charts` lays out the SVG bar charts, `render` writes HTML (templates/report.html.j2), CSV and JSON.
"""
