"""`GET /status` (HTML) and `GET /status.json`: the public status page (tocsin/receiver/public_status.py).

Public whatever credentials the alert endpoints take, so they show only what the policy made public: listed
components, titles worded from the policy, public status words, impact and times. Registered only when the
page is on: switched off (`status_page.enabled: false`, `TOCSIN_STATUS_PAGE=off`) both answer 404.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse

from tocsin.receiver.gate import Problem
from tocsin.receiver.public_status import StatusPage, StatusUnavailable, StatusView

log = logging.getLogger("tocsin.receiver")

# The status page is public and may sit behind a CDN: short caching, and no script may ever run in it.
STATUS_HEADERS = {
    "Cache-Control": "public, max-age=10",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
STATUS_DOWN_HTML = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="60">'
    "<title>Status unavailable</title></head><body><p>The status is unavailable right now. "
    "This page tries again every minute.</p></body></html>"
)


def add_status_routes(app: FastAPI, status_page: StatusPage) -> None:
    down_headers = {**STATUS_HEADERS, "Cache-Control": "no-store"}
    # A failed look-up is remembered for the cache period too: a Temporal outage is not hammered either.
    down_headers["Retry-After"] = str(max(int(status_page.config.cache_seconds), 1))

    @app.get(
        "/status.json",
        summary="Public status: current incidents, components, recent history (no credentials needed)",
        response_model=StatusView,
        responses={503: {"model": Problem, "description": "Temporal is unreachable"}},
    )
    async def status_json() -> Response:
        try:
            view = await status_page.view()
        except StatusUnavailable as err:
            problem = Problem(reason="temporal_unavailable", message=str(err))
            return JSONResponse(problem.model_dump(exclude_none=True), status_code=503, headers=down_headers)
        return JSONResponse(view.model_dump(mode="json"), headers=STATUS_HEADERS)

    @app.get(
        "/status",
        summary="Public status page (HTML, reloads every minute; no credentials needed)",
        response_class=HTMLResponse,
        responses={503: {"content": {"text/html": {}}, "description": "Temporal is unreachable"}},
    )
    async def status_html() -> Response:
        try:
            view = await status_page.view()
        except StatusUnavailable:
            return HTMLResponse(STATUS_DOWN_HTML, status_code=503, headers=down_headers)
        try:
            html = status_page.html(view)
        except Exception:
            # An operator's template the sandbox refused, or one broken since the start: the page says nothing
            # more than "unavailable", the log says why.
            log.exception("status page: the template failed to render")
            return HTMLResponse(STATUS_DOWN_HTML, status_code=500, headers={**down_headers, "Retry-After": "60"})
        return HTMLResponse(html, headers=STATUS_HEADERS)
