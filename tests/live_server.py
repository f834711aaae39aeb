"""The API served over real HTTP on loopback, for clients that need sockets (tuspy, raw PATCHes).

The server runs in a thread of the test process on a database whose commits are real
(`committed_db`), so the requests, the test and forked RQ work horses all see the same rows.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fieldcast.context import AppContext
from fieldcast.db import Database
from tests import factories


@dataclass
class LiveServer:
    url: str
    app: Flask
    context: AppContext

    def login(self, user: Any) -> dict[str, str]:
        with self.app.test_client() as client:
            response = client.post(
                "/api/v1/auth/token", json={"email": user.email, "password": factories.PASSWORD}
            )
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def _unready(environ: Any, start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@contextmanager
def serve(context: AppContext) -> Iterator[LiveServer]:
    from api.app import create_app

    # The port is known once bound; the URLs the API hands out (PUBLIC_BASE_URL) name it.
    server = make_server("127.0.0.1", 0, _unready, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    settings = dataclasses.replace(context.settings, public_base_url=base_url)
    context = dataclasses.replace(context, settings=settings)
    app = create_app(settings, context=context)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(base_url, app, context)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def committed_factories(db: Database) -> Iterator[Session]:
    """Factories whose rows are committed, for tests that cross threads or processes."""
    with db.session() as session:
        factories.bind(session)
        try:
            yield session
        finally:
            factories.bind(None)
