"""The baseline of `bench.programs`: a minimal Flask endpoint that merges a progress report with
the product's own SQL and nothing else.

`POST /views/<view_id>/reports` with `{"seq": n, "segments": [[start, end], ...]}` and the
person's id in `X-User`: one statement reads the view and its video's duration, then the
product's two merge statements run as they are (`MERGE_VIEW` and `MERGE_PROGRESS` of
`fieldcast.viewing.progress`). No authentication, validation, visibility check, rate limit,
ORM, events, share or assignment bookkeeping: what the product adds to the same SQL is what
the comparison shows.

Served like the product (gunicorn's threaded worker, the same processes and threads):
`python -m gunicorn 'bench.bare_reports:create()'` with DATABASE_URL set.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

from fieldcast.settings import normalise_database_url
from fieldcast.viewing.progress import MERGE_PROGRESS, MERGE_VIEW

_VIEW = text(
    "SELECT v.org_id, v.user_id, v.video_id, v.start_ms, v.end_ms, d.duration_ms "
    "FROM views v JOIN videos d ON d.org_id = v.org_id AND d.id = v.video_id "
    "WHERE v.id = :id AND v.user_id = :user_id"
)


def create() -> Flask:
    engine = create_engine(
        normalise_database_url(os.environ["DATABASE_URL"]), pool_size=8, pool_pre_ping=False
    )
    app = Flask("bare_reports")

    @app.post("/views/<view_id>/reports")
    def report(view_id: str) -> Any:
        body = request.get_json()
        with engine.begin() as conn:
            view = conn.execute(
                _VIEW, {"id": view_id, "user_id": request.headers["X-User"]}
            ).one_or_none()
            if view is None:
                return jsonify({"error": "not found"}), 404
            union = (
                "{"
                + ",".join(
                    f"[{max(low, view.start_ms)},{min(high, view.end_ms)})"
                    for low, high in body["segments"]
                )
                + "}"
            )
            played = conn.execute(
                MERGE_VIEW,
                {
                    "union": union,
                    "position": None,
                    "seq": body["seq"],
                    "device_at": None,
                    "device_done": None,
                    "org_id": view.org_id,
                    "id": view_id,
                },
            ).one()
            progress = conn.execute(
                MERGE_PROGRESS,
                {
                    "org_id": view.org_id,
                    "user_id": view.user_id,
                    "video_id": view.video_id,
                    "union": union,
                    "duration": view.duration_ms or view.end_ms,
                },
            ).one()
        return jsonify({"played_ms": progress.played_ms, "view_played_ms": played.played_ms})

    return app
