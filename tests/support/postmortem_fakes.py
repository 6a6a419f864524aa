"""GitHub as the post-mortem pipeline sees it, played on a tests/support/vendor_server.py VendorServer in GitHub's REST
shapes for PyGithub:

- FakeGitHubRepo: FakeGitHub's issues (tests/support/vendor_fakes.py), one issue by number, and the contents API for
  files under `postmortems/` (publishing);
- FakeChanges: deployments with their statuses, pull requests (paged two at a time) and commits (the changes
  source). Give it an existing FakeGitHub (a FakeGitHubRepo) to play both on one server: routes registered
  twice replace each other, so two FakeGitHubs on one server would not share their issues.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from typing import Any

from tests.support.vendor_fakes import FakeGitHub
from tests.support.vendor_server import Recorded, Reply, VendorServer

__all__ = ["FakeChanges", "FakeGitHubRepo", "iso"]


def iso(when: datetime) -> str:
    """GitHub's timestamps: UTC, to the second, with a Z."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHubRepo(FakeGitHub):
    """FakeGitHub's issues, plus one issue by number and the contents API for files under `postmortems/`.

    Like GitHub: a file's sha is its git blob id; PUT without the current sha on an existing file is a 422, with
    a stale sha a 409; content travels base64-encoded (GitHub wraps it at 60 characters)."""

    def __init__(self, server: VendorServer) -> None:
        super().__init__(server)
        self.files: dict[str, bytes] = {}
        self.commits: list[dict[str, Any]] = []
        server.on("GET", "/repos/{owner}/{repo}/issues/{number}", self.get_issue)
        server.on("GET", "/repos/{owner}/{repo}/contents/postmortems/{name}", self.get_contents)
        server.on("PUT", "/repos/{owner}/{repo}/contents/postmortems/{name}", self.put_contents)

    @staticmethod
    def blob_sha(data: bytes) -> str:
        return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()

    def content_json(self, request: Recorded, path: str) -> dict[str, Any]:
        full_name = f"{request.params['owner']}/{request.params['repo']}"
        data = self.files[f"{full_name}/{path}"]
        encoded = base64.b64encode(data).decode()
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n",
            "sha": self.blob_sha(data),
            "url": f"{self.server.url}/repos/{full_name}/contents/{path}?ref=main",
            "html_url": f"https://github.com/{full_name}/blob/main/{path}",
            "download_url": f"https://raw.githubusercontent.com/{full_name}/main/{path}",
        }

    def get_issue(self, request: Recorded) -> Reply:
        full_name = f"{request.params['owner']}/{request.params['repo']}"
        for issue in self.issues.get(full_name, []):
            if str(issue["number"]) == request.params["number"]:
                return Reply(json=issue)
        return Reply(404, json={"message": "Not Found"})

    def get_contents(self, request: Recorded) -> Reply:
        path = f"postmortems/{request.params['name']}"
        if f"{request.params['owner']}/{request.params['repo']}/{path}" not in self.files:
            return Reply(404, json={"message": "Not Found"})
        return Reply(json=self.content_json(request, path))

    def put_contents(self, request: Recorded) -> Reply:
        full_name = f"{request.params['owner']}/{request.params['repo']}"
        path = f"postmortems/{request.params['name']}"
        body = request.json
        current = self.files.get(f"{full_name}/{path}")
        if current is not None and "sha" not in body:
            return Reply(422, json={"message": 'Invalid request.\n\n"sha" wasn\'t supplied.'})
        if current is not None and body["sha"] != self.blob_sha(current):
            return Reply(409, json={"message": f"{path} does not match {body['sha']}"})
        self.files[f"{full_name}/{path}"] = base64.b64decode(body["content"])
        commit = {
            "sha": f"{len(self.commits) + 1:040x}",
            "url": f"{self.server.url}/repos/{full_name}/git/commits/{len(self.commits) + 1:040x}",
            "html_url": f"https://github.com/{full_name}/commit/{len(self.commits) + 1:040x}",
            "message": body["message"],
            "parents": [],
        }
        self.commits.append(commit)
        return Reply(
            200 if current is not None else 201, json={"content": self.content_json(request, path), "commit": commit}
        )


class FakeChanges:
    """Deployments (with statuses), pull requests (paged two at a time, with Link headers) and commits of `repo`.

    `github` serves `GET /repos/{owner}/{repo}` (and issues); without one, a FakeGitHub of its own is made."""

    def __init__(self, server: VendorServer, repo: str = "acme/checkout", github: FakeGitHub | None = None) -> None:
        self.server = server
        self.repo = repo
        self.base = f"{server.url}/repos/{repo}"
        self.github = github if github is not None else FakeGitHub(server)  # GET /repos/{owner}/{repo}
        self.deployments: list[dict[str, Any]] = []
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.commits: list[dict[str, Any]] = []
        server.on("GET", "/repos/{owner}/{repo}/deployments", lambda r: Reply(json=self.deployments))
        server.on(
            "GET",
            "/repos/{owner}/{repo}/deployments/{id}/statuses",
            lambda r: Reply(json=self.statuses[int(r.params["id"])]),
        )
        server.on("GET", "/repos/{owner}/{repo}/pulls", self.list_pulls)
        server.on("GET", "/repos/{owner}/{repo}/pulls/{number}", self.get_pull)
        server.on("GET", "/repos/{owner}/{repo}/commits", lambda r: Reply(json=self.commits))

    def deployment(self, id_: int, created: datetime, *statuses: tuple[str, datetime], sha: str = "abc1234def") -> None:
        self.deployments.append(
            {
                "url": f"{self.base}/deployments/{id_}",
                "id": id_,
                "sha": sha,
                "ref": "main",
                "task": "deploy",
                "environment": "production",
                "description": None,
                "creator": {"login": "alice", "id": 1, "type": "User"},
                "created_at": iso(created),
                "updated_at": iso(created),
                "statuses_url": f"{self.base}/deployments/{id_}/statuses",
            }
        )
        self.statuses[id_] = [
            {"id": n, "state": state, "created_at": iso(when), "updated_at": iso(when), "environment": "production"}
            for n, (state, when) in enumerate(statuses)
        ]

    def pull(self, number: int, title: str, updated: datetime, merged: datetime | None, merger: str = "") -> None:
        self.pulls.append(
            {
                "url": f"{self.base}/pulls/{number}",
                "id": 5000 + number,
                "number": number,
                "state": "closed",
                "title": title,
                "user": {"login": "carol", "id": 3, "type": "User"},
                "created_at": iso(updated - timedelta(days=1)),
                "updated_at": iso(updated),
                "closed_at": iso(updated),
                "merged_at": iso(merged) if merged else None,
                "merge_commit_sha": f"merge{number:04d}" + "0" * 31,
                "html_url": f"https://github.com/{self.repo}/pull/{number}",
                "_merger": merger,
            }
        )

    def list_pulls(self, request: Recorded) -> Reply:
        page = int(request.query.get("page", ["1"])[0])
        chunk = [{k: v for k, v in p.items() if k != "_merger"} for p in self.pulls[(page - 1) * 2 : page * 2]]
        headers = {}
        if page * 2 < len(self.pulls):
            headers["Link"] = f'<{self.base}/pulls?state=closed&page={page + 1}>; rel="next"'
        return Reply(json=chunk, headers=headers)

    def get_pull(self, request: Recorded) -> Reply:
        [found] = [p for p in self.pulls if p["number"] == int(request.params["number"])]
        detail = {k: v for k, v in found.items() if k != "_merger"}
        detail["merged_by"] = {"login": found["_merger"], "id": 9, "type": "User"} if found["_merger"] else None
        return Reply(json=detail)

    def commit(self, sha: str, message: str, when: datetime, login: str | None, name: str = "Someone") -> None:
        person = {"name": name, "email": "x@example.com", "date": iso(when)}
        self.commits.append(
            {
                "sha": sha,
                "url": f"{self.base}/commits/{sha}",
                "html_url": f"https://github.com/{self.repo}/commit/{sha}",
                "commit": {
                    "url": f"{self.base}/git/commits/{sha}",
                    "author": person,
                    "committer": person,
                    "message": message,
                },
                "author": {"login": login, "id": 4, "type": "User"} if login else None,
                "committer": None,
                "parents": [],
            }
        )
