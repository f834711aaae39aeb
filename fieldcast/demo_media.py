"""The demo's videos: three short clips made with ffmpeg, uploaded as a phone would (the upload
service, then processing by the running worker), then commented on, shared and collected, so
that the web app at /app has something to show at once."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.conversation.comments import post_comment
from fieldcast.curation.collections import ItemInput, add_items, create_collection, publish
from fieldcast.db import utcnow
from fieldcast.models.accounts import Team, User
from fieldcast.models.curation import CollectionVisibility
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.policy import Principal
from fieldcast.programs.assignments import Subject, assign
from fieldcast.sharing.shares import share_video
from fieldcast.uploads import services as uploads
from fieldcast.uploads import tus
from fieldcast.videos.services import create_video
from media.ffmpeg import ffmpeg_binary
from media.ffmpeg import run as ffmpeg_run


@dataclass(frozen=True)
class DemoVideo:
    author: str
    title: str
    description: str
    source: str  # an ffmpeg lavfi video source
    tone_hz: int


DEMO_VIDEOS = (
    DemoVideo(
        "riley",
        "Handling Acme's pricing objection",
        "How I kept the Acme deal moving when they said we cost too much.",
        "testsrc2=size=540x960:rate=30",
        440,
    ),
    DemoVideo(
        "sam",
        "A discovery call opener that works",
        "Thirty seconds that get the buyer talking about their problem, not our product.",
        "smptehdbars=size=540x960:rate=30",
        523,
    ),
    DemoVideo(
        "maya",
        "Pipeline review: what good looks like",
        "What I look for in your pipeline before our Monday review.",
        "mandelbrot=size=540x960:rate=30",
        330,
    ),
)
CLIP_SECONDS = 8


def make_clip(ffmpeg: str, demo: DemoVideo, target: Path) -> None:
    """A portrait H.264/AAC MP4 like a phone's, CLIP_SECONDS long."""
    ffmpeg_run(
        [
            ffmpeg, "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", demo.source,
            "-f", "lavfi", "-i", f"sine=frequency={demo.tone_hz}:sample_rate=44100",
            "-t", str(CLIP_SECONDS), "-c:v", "libx264", "-preset", "veryfast",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest",
            "-movflags", "+faststart", str(target),
        ],
        timeout_s=120,
    )  # fmt: skip


def upload_videos(ctx: AppContext, people: dict[str, User]) -> list[uuid.UUID]:
    """Each demo video as a draft and its whole file through the tus service: processing is
    recorded for the worker, as for a phone's upload."""
    ffmpeg = ffmpeg_binary(ctx.settings.ffmpeg_binary)
    video_ids = []
    with tempfile.TemporaryDirectory(prefix="fieldcast-demo-") as work:
        for demo in DEMO_VIDEOS:
            path = Path(work) / f"{demo.author}.mp4"
            make_clip(ffmpeg, demo, path)
            principal = Principal(user=people[demo.author])
            size = path.stat().st_size
            with ctx.db.unit_of_work() as session:
                video = create_video(
                    session, principal, title=demo.title, description=demo.description
                )
                upload = uploads.create_upload(
                    session,
                    principal,
                    ctx.storage,
                    video_id=video.id,
                    length=size,
                    max_size=ctx.settings.limits.max_upload_bytes,
                    expires_in=timedelta(hours=1),
                    filename=path.name,
                )
                video_ids.append(video.id)
            send_whole_file(ctx, principal, upload.id, path)
    return video_ids


def send_whole_file(
    ctx: AppContext, principal: Principal, upload_id: uuid.UUID, path: Path
) -> None:
    """A file in one chunk through the tus service, as the endpoint takes a PATCH: the last
    byte records the video's processing."""
    with path.open("rb") as stream, ctx.db.unit_of_work() as session:
        tus.append(
            session,
            principal,
            ctx.storage,
            ctx.redis,
            upload_id,
            offset=0,
            stream=stream,
            content_length=path.stat().st_size,
            expires_in=timedelta(hours=1),
            max_size=ctx.settings.limits.max_upload_bytes,
        )


def wait_until_playable(
    ctx: AppContext,
    video_ids: list[uuid.UUID],
    *,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once every video plays (processed by the running worker) before `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with ctx.db.unit_of_work() as session:
            statuses = {session.get_one(Video, video_id).status for video_id in video_ids}
        if statuses <= {VideoStatus.PLAYABLE, VideoStatus.READY}:
            return True
        if VideoStatus.FAILED in statuses:
            return False
        sleep(1.0)
    return False


def converse(
    session: Session, people: dict[str, User], teams: dict[str, Team], video_ids: list[uuid.UUID]
) -> None:
    """Shares, timeline comments with mentions, and a published collection."""
    pricing, opener, pipeline = video_ids
    as_ = {handle: Principal(user=user) for handle, user in people.items()}
    share_video(
        session,
        as_["riley"],
        pricing,
        team_ids=[teams["Sales West"].id, teams["Enablement"].id],
        message="What would you have said at 0:03?",
    )
    share_video(
        session,
        as_["sam"],
        opener,
        user_ids=[people["riley"].id, people["maya"].id],
        team_ids=[teams["Enablement"].id],
    )
    share_video(session, as_["maya"], pipeline, team_ids=[teams["Sales"].id])
    first = post_comment(
        session,
        as_["sam"],
        pricing,
        body="@riley this is where you turned it around: you asked about their budget cycle",
        at_ms=3000,
    )
    post_comment(
        session,
        as_["riley"],
        pricing,
        body="Thanks! I learnt it from @maya's review last month",
        parent_id=first.id,
    )
    post_comment(
        session,
        as_["maya"],
        pricing,
        body="Great pause here: let them fill the silence",
        at_ms=5000,
        end_ms=7000,
    )
    post_comment(session, as_["riley"], opener, body="Stealing this for Monday", at_ms=2000)
    collection = create_collection(
        session,
        as_["eli"],
        title="Handling objections",
        description="Short moments from real calls where a rep kept the deal moving.",
        visibility=CollectionVisibility.ORGANISATION,
    )
    add_items(
        session,
        as_["eli"],
        collection.id,
        [ItemInput(video_id=pricing), ItemInput(video_id=opener, start_ms=1000, end_ms=6000)],
    )
    publish(session, as_["eli"], collection.id)
    # The collection assigned to the reps, due in a week, so "my learning" and the learning
    # metrics have something to show.
    assign(
        session,
        as_["eli"],
        Subject(collection_id=collection.id),
        team_ids=[teams["Sales"].id],
        due_at=utcnow() + timedelta(days=7),
        message="Watch these before Thursday's deal review.",
    )
