"""Steps that many API tests take the same way through the Flask test client."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def share_video(
    client: FlaskClient, headers: dict[str, str], video: Any, *people: Any, message: str = ""
) -> str:
    """Share `video` with `people` as the holder of `headers`; the new share's id."""
    response = client.post(
        f"/api/v1/videos/{video.id}/shares",
        json={"user_ids": [str(p.id) for p in people], "message": message},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    share_id: str = response.get_json()["id"]
    return share_id
