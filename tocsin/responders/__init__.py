"""Responders answer where the page lands: Slack buttons and commands, SMS and voice replies, PagerDuty's own
acknowledgements, signed email links. Each vendor's callback is verified by its signature, its person mapped
through the roster, and turned into one of the incident's updates.

contracts   InboundAction (who did what to which incident, and how the vendor vouched for it), ActOutcome
identity    the roster person behind a Slack id, a phone number, a PagerDuty user or an email address
codes       the short code a page carries, so a reply can name its incident
slack, twilio, pagerduty, links
            each vendor's signature (verified in constant time) and callback, parsed into an InboundAction (pure)
dispatch    an InboundAction as an update on the incident (Temporal's client), idempotent by the vendor's id
"""
