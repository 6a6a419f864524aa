"""The post-mortem report: `view` builds its view-model from the ReportRequest, `sections` writes its prose
from the incident's record, `render` renders it as Markdown and HTML with the (sandboxed) templates.
"""
