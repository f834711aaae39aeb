"""What request logs leave out (api/log_masking.py)."""

from __future__ import annotations

import pytest

from api.log_masking import mask_secrets


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (
            "PATCH /api/v1/uploads/4f1c/Zm9vYmFy HTTP/1.1",
            "PATCH /api/v1/uploads/4f1c/<secret> HTTP/1.1",
        ),
        (
            "/media/v/1/master.m3u8?g=abc.def&sig=0123&x=1",
            "/media/v/1/master.m3u8?g=<secret>&sig=<secret>&x=1",
        ),
        (
            "GET /invitations/accept?token=s3cr3t HTTP/1.1",
            "GET /invitations/accept?token=<secret> HTTP/1.1",
        ),
        ("/app/password-reset?token=s3cr3t", "/app/password-reset?token=<secret>"),
        (
            "/api/v1/auth/oidc/callback?state=st&code=c0de",
            "/api/v1/auth/oidc/callback?state=st&code=<secret>",
        ),
        ("/app/?code=c0de&state=st", "/app/?code=<secret>&state=st"),
        # Names that only end like a secret's are left alone.
        ("/api/v1/search?q=x&postcode=N1&my_token=y", "/api/v1/search?q=x&postcode=N1&my_token=y"),
    ],
)
def test_secrets_in_urls_are_masked(line: str, masked: str) -> None:
    assert mask_secrets(line) == masked
