"""Search at size: queries, facets and freshness in a large organisation, for a rep and an admin.

What runs: the real API (`fieldcast web`, gunicorn, 2 processes), two `fieldcast worker`
processes (queues notify, search and default) and the scheduler, on a scratch PostgreSQL
database and Redis database per size. COMMENTS_PER_MINUTE is set out of the way, so the run's
own comments are never rate limited.

Seeded (per size, each in its own scratch database): `--orgs` organisations (default 50). The
largest has 10,000 people (an admin, a manager leading each team of 50, reps) and 40% of the
videos, comments and transcript segments; the others have 200 people each and share the rest
evenly. Videos are `ready`, 30-300 s long, made over the last year by the organisation's
people, with deal attributes (industry, stage, region, and 0-3 competitors in a list) drawn from
small value sets. Their titles (3-8 words), descriptions (none, or 5-40 words), comments (5-25
words, at a random moment, written after the video) and transcript segments (8-30 words, 15 s
each) are words of wordfreq's 20,000 most frequent English words, drawn with weights 1/rank
(Zipf); comments gather on some videos (the busiest has a few per cent of its organisation's).
In the largest organisation every video is shared by its author with 1-11 teams (6 on
average, so a rep receives about 3% of the organisation's videos), in the others half the
videos with one team; a share's recipient rows (30% of them `watched`) are the members of its
teams, as a sent share leaves them. Every organisation also has 20 collections of 10 of its
videos published for everyone, one published for each team, and 5 videos assigned to everyone
(so the visibility of every query includes what curation grants). The rep measured is one
whose team received the number of videos closest to 3% of the organisation's
(`rep_sees_share`). Transcripts and their segments are
seeded when the database has `transcript_segments`; otherwise the run says so on stderr and
`segments_seeded` is 0. Deals are seeded (one per five videos, each video naming one) when the
database has `deals`.

How: the base rows are written with COPY FROM STDIN (organisations, users, teams, memberships,
videos, shares, comments, transcripts, segments); the recipient rows with one INSERT ... SELECT
joining the shares' teams to their members, in primary-key order. While the bulk rows go in,
every trigger of videos, shares, share_recipients and comments is disabled (`--comment-triggers
bulk`: the rows are consistent by construction, so the foreign-key checks are skipped too) and
their indexes that back no constraint are dropped, then made again from their definitions in
one pass each. The user triggers stamp delta-sync marks (left empty: the rows count as older
than any sync token) and keep `moment_counts`, which is then filled in one INSERT ... SELECT;
the comments' `comments_search_tsv` trigger alone stays on (their stemmed words, for moments).
`--comment-triggers fire` leaves the comments table alone: its triggers and foreign-key checks
run for every row of the COPY, with its indexes in place, as for the API's writes. Everything is
enabled again before any product process starts. Then the search documents are built by the
product's own set-based path, `fieldcast.search.indexing.build`, 500 videos per call and
transaction (`doc_build_s`, `docs_per_s`), and VACUUM ANALYZE settles the tables.

Measured, per size, in the largest organisation: a query mix made from the same vocabulary, the
same for the rep and for the admin: common words (ranks 50-600, not stop words), rare words
(rank 5,000 or more, taken from the organisation's own comments), two-word queries, phrases of
2-3 consecutive words of the organisation's comments (in quotes), prefixes (the first 3-5
letters of a common word, `prefix=true`), attribute filters without words (one value; two
filters with `attr_match=any`) and with a word (a negated filter, `-region:...`). Every query but
the prefixes is sent with `prefix=false`. One client with a keep-alive session per person
sends, one request at a time (sequential), for each query of the mix in a shuffled order: GET
/api/v1/search, GET /api/v1/search/facets with the same parameters, and GET /api/v1/me; one
round unmeasured, then `--rounds` rounds. GET /api/v1/deals/{id}/recommendations is measured
the same way when the API has that route (its /openapi.json) and deals were seeded; else its
figures are null and `recommendations_measured` says why. Afterwards, `--fresh` times: the rep
posts a comment holding a made-up word on a video they see, then searches for the word every
50 ms until the video is found. EXPLAIN (ANALYZE, BUFFERS) of the candidate query
(`fieldcast.search.engine`'s matching documents in rank order, up to its limit) of a common, a
rare and a prefix query, for the rep and the admin, is written to stderr, and so is each SQL
statement of one search and one facets call of those queries (run in this process by the
engine's own functions), with its time.

Figures (one JSON line on stdout, progress on stderr); times are wall times at the client:

- `search_p95_ms_rep`, `search_p95_ms_admin` (and `_p50_ms_`): GET /api/v1/search over the
  mix; `search_p95_ms` is the larger of the two p95s (the target holds for each).
- `facets_p95_ms` (`_rep`, `_admin`, p50s): GET /api/v1/search/facets over the mix.
- `recommendations_p95_ms` (`_rep`, `_admin`): as above, or null.
- `search_p95_ms_by_kind`: p95 of each kind of query for the rep and the admin;
  `hits_by_kind`: the mean number of results of the first page of each kind.
- `baseline_me_p95_ms`: GET /api/v1/me in the same loop (what the cheapest signed-in request
  costs here); `search_vs_me`, `facets_vs_me`, `recommendations_vs_me`: each p95 over it.
- `fresh_s`: from just before the comment's POST (its commit is inside it) until a search
  found its word, the 95th percentile of `--fresh` tries; `fresh_median_s`, `fresh_max_s`.
- `growth`: when both sizes run, `search_p95_ms` at the full size over that at the base size
  (10 times the rows); `growth_rep`, `growth_admin`, `growth_facets` likewise. The top-level
  figures are the full size's; `sizes` holds each size's own.
- `seed_s` (seconds per table), `seed_total_s`, `doc_build_s`, `docs_per_s`; the rows seeded
  (`videos_seeded`, `comments_seeded`, `segments_seeded`, `share_recipients_seeded`, ...),
  `rep_sees_videos` and `rep_sees_share` (of the organisation's videos).

Targets: search_p95_ms <= 50 (for each), facets_p95_ms <= 80, recommendations_p95_ms <= 100,
growth <= 2, fresh_s <= 2; `met` says which were (null when not measured). A missed target is a
figure, not a failure: the run exits non-zero only when it cannot measure (a request fails, a
comment is not found within 60 s).

No database or Redis is emptied here: the scratch environment owns its own.

Run: python -m bench.search  [--scale base|full|both (default both) --rounds 3 --fresh 5
     --comment-triggers bulk|fire | --quick]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import requests

from bench import harness
from bench.fanout import p95, wait_for_workers
from bench.harness import (
    NON_MEDIA_WORKER,
    free_port,
    running,
    scratch_environment,
    wait_until_up,
)

WEB_WORKERS = 2
WORKERS = 2
UNLIMITED_PER_MINUTE = "1000000"
BUILD_BATCH = 500
FRESH_POLL_S = 0.05
FRESH_TIMEOUT_S = 60.0
VOCABULARY = 20_000
# Ranks (0-based) of the words queries take.
COMMON = (50, 600)
TWO_WORDS = (100, 2_000)
RARE_FROM = 5_000
QUERIES_PER_KIND = 6
TEAM_SIZE = 50
REP_SHARE = 0.03
# What curation grants, per organisation: collections published for everyone (and one per
# team), of so many videos each, and videos assigned to everyone.
ORG_COLLECTIONS = 20
COLLECTION_ITEMS = 10
ORG_ASSIGNMENTS = 5
SEGMENT_MS = 15_000
DEAL_EVERY = 5
STARTED = time.perf_counter()

TARGETS = {
    "search_p95_ms": 50,
    "facets_p95_ms": 80,
    "recommendations_p95_ms": 100,
    "growth": 2,
    "fresh_s": 2,
}

INDUSTRIES = (
    "retail",
    "banking",
    "insurance",
    "healthcare",
    "manufacturing",
    "logistics",
    "energy",
    "telecom",
    "education",
    "media",
    "software",
    "hospitality",
)
STAGES = ("discovery", "qualification", "demo", "proposal", "negotiation", "closed")
REGIONS = ("emea", "nordics", "dach", "uki", "north-america", "latam", "apac", "anz")
COMPETITORS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
)
FIRST_NAMES = (
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Nils",
    "Olga",
    "Pablo",
    "Rosa",
    "Sami",
    "Tara",
    "Uwe",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Amir",
    "Bea",
    "Cem",
    "Dana",
    "Emil",
)
LAST_NAMES = (
    "Berg",
    "Costa",
    "Dahl",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Keller",
    "Larsen",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Vogel",
    "Weber",
    "Young",
    "Zimmer",
    "Alves",
    "Brandt",
    "Chen",
)


def log(message: str) -> None:
    harness.log(f"[{time.perf_counter() - STARTED:6.1f} s] {message}")


@dataclass(frozen=True)
class Sizes:
    name: str
    videos: int
    comments: int
    segments: int
    orgs: int = 50
    big_people: int = 10_000
    other_people: int = 200
    team_size: int = TEAM_SIZE
    big_share: float = 0.4


SCALES = {
    "base": Sizes("base", 10_000, 100_000, 100_000),
    "full": Sizes("full", 100_000, 1_000_000, 1_000_000),
    "quick": Sizes(
        "quick", 600, 3_000, 3_000, orgs=5, big_people=300, other_people=40, team_size=30
    ),
}


class Words:
    """wordfreq's most frequent English words (letters only), drawn with weights 1/rank."""

    def __init__(self, rng: random.Random) -> None:
        from wordfreq import top_n_list

        self.words = [w for w in top_n_list("en", VOCABULARY) if w.isascii() and w.isalpha()]
        self.cum = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(self.words))))
        self.total = self.cum[-1]
        self.rng = rng

    def rank(self) -> int:
        return bisect.bisect_left(self.cum, self.rng.random() * self.total)

    def ranks(self, n: int) -> list[int]:
        total, cum, rand = self.total, self.cum, self.rng.random
        return [bisect.bisect_left(cum, rand() * total) for _ in range(n)]

    def text(self, low: int, high: int) -> str:
        return " ".join(self.words[r] for r in self.ranks(self.rng.randint(low, high)))


def uuid7_at(rng: random.Random, at: datetime) -> uuid.UUID:
    """A UUID version 7 of the moment `at`, as the product's ids are (fieldcast.db.uuid7)."""
    unix_ms = int(at.timestamp() * 1000)
    rand = rng.getrandbits(74)
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


@dataclass
class Org:
    id: uuid.UUID
    people: list[uuid.UUID] = field(default_factory=list)
    admin: uuid.UUID | None = None
    # Each person's team index (the admin has none), and each team's id and members.
    team_of: dict[uuid.UUID, int] = field(default_factory=dict)
    teams: list[uuid.UUID] = field(default_factory=list)
    members: list[list[uuid.UUID]] = field(default_factory=list)
    reps: list[uuid.UUID] = field(default_factory=list)
    # Indices into the global video arrays.
    first_video: int = 0
    videos: int = 0
    deals: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Seeded:
    big: Org
    rep_id: uuid.UUID
    admin_id: uuid.UUID
    rep_email: str
    admin_email: str
    counts: dict[str, int]
    seed_s: dict[str, float]
    doc_build_s: float
    rep_sees_videos: int
    big_videos: int
    # Texts of the largest organisation's comments, and the rare words found in them.
    sample_comments: list[str]
    rare_words: list[str]
    segments_table: bool
    deals_table: bool


def _ts(at: datetime) -> str:
    return at.isoformat()


def copy_lines(
    conn: psycopg.Connection[Any], table: str, columns: str, lines: Iterable[str]
) -> int:
    """COPY text-format lines (tab-separated, \\N for null, no escapes needed) into a table."""
    count = 0
    buffer: list[str] = []
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for line in lines:
            buffer.append(line)
            count += 1
            if len(buffer) >= 5_000:
                copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))
    return count


class Seeder:
    def __init__(self, database_url: str, sizes: Sizes, triggers: str) -> None:
        self.url = database_url
        self.sizes = sizes
        self.triggers = triggers
        self.rng = random.Random(20261204)
        self.words = Words(self.rng)
        self.now = datetime.now(UTC)
        self.seed_s: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.orgs: list[Org] = []
        # Per video (global index): id, org index, owner, created_at, duration.
        self.video_ids: list[uuid.UUID] = []
        self.video_org: list[int] = []
        self.video_owner: list[uuid.UUID] = []
        self.video_created: list[datetime] = []
        self.video_duration: list[int] = []
        self.team_received: list[int] = []  # the largest organisation's teams
        self.sample_comments: list[str] = []
        self.rare: set[str] = set()

    def timed(self, name: str, started: float) -> None:
        self.seed_s[name] = round(time.perf_counter() - started, 2)
        log(f"seeded {name}: {self.counts.get(name, '')} rows in {self.seed_s[name]} s")

    def run(self) -> Seeded:
        from fieldcast.accounts.services import hash_password

        with psycopg.connect(self.url, autocommit=False) as conn:
            self.segments_table = self.exists(conn, "transcript_segments")
            self.deals_table = self.exists(conn, "deals")
            videos_have_deal = self.deals_table and self.has_column(conn, "videos", "deal_id")
            if not self.segments_table:
                log("transcript_segments does not exist in this schema: no segments seeded")
            bulk_tables = ["videos", "shares", "share_recipients"]
            if self.triggers == "bulk":
                bulk_tables.append("comments")
            for table in bulk_tables:
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            if "comments" in bulk_tables:
                # The one trigger a comment's row needs for search: its stemmed words.
                conn.execute("ALTER TABLE comments ENABLE TRIGGER comments_search_tsv")
            # For the indexes made again below: each one sort in memory.
            conn.execute("SET maintenance_work_mem = '256MB'")
            indexes = {table: self.drop_indexes(conn, table) for table in bulk_tables}
            self.people(conn)
            if self.deals_table:
                self.deals(conn)
            self.videos(conn, videos_have_deal)
            self.shares(conn)
            if self.exists(conn, "collections"):
                self.curation(conn)
            self.comments(conn)
            if self.segments_table:
                self.segments(conn)
            started = time.perf_counter()
            for table in bulk_tables:
                for definition in indexes[table]:
                    conn.execute(definition)
                conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
            self.timed("indexes", started)
            big = self.orgs[0]
            assert big.admin is not None
            rep = self.measured_rep()
            hashed = hash_password(harness.PASSWORD)
            conn.execute(
                "UPDATE users SET password_hash = %s WHERE id = ANY(%s)", (hashed, [rep, big.admin])
            )
            emails: dict[uuid.UUID, str] = dict(
                conn.execute(
                    "SELECT id, email FROM users WHERE id = ANY(%s)", ([rep, big.admin],)
                ).fetchall()
            )
            conn.commit()
        doc_build_s = self.build_documents()
        started = time.perf_counter()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            sees = conn.execute(
                "SELECT count(*) FROM videos v WHERE v.org_id = %(org)s AND (v.owner_id = %(u)s "
                "OR v.id IN (SELECT video_id FROM share_recipients WHERE user_id = %(u)s))",
                {"org": big.id, "u": rep},
            ).fetchone()
        self.timed("vacuum_analyze", started)
        assert sees is not None
        return Seeded(
            big=big,
            rep_id=rep,
            admin_id=big.admin,
            rep_email=emails[rep],
            admin_email=emails[big.admin],
            counts=self.counts,
            seed_s=self.seed_s,
            doc_build_s=doc_build_s,
            rep_sees_videos=int(sees[0]),
            big_videos=big.videos,
            sample_comments=self.sample_comments,
            rare_words=sorted(self.rare),
            segments_table=self.segments_table,
            deals_table=self.deals_table,
        )

    @staticmethod
    def drop_indexes(conn: psycopg.Connection[Any], table: str) -> list[str]:
        """Drop the table's indexes that back no constraint; returns their definitions, to be
        made again (in one sorted pass each) once the rows are in."""
        found = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes i WHERE tablename = %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = format('%%I.%%I', i.schemaname, i.indexname)::regclass)",
            (table,),
        ).fetchall()
        definitions = []
        for name, definition in found:
            conn.execute(f'DROP INDEX "{name}"')
            definitions.append(str(definition))
        return definitions

    @staticmethod
    def exists(conn: psycopg.Connection[Any], table: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        return bool(row and row[0])

    @staticmethod
    def has_column(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = %s",
            (table, column),
        ).fetchone()
        return bool(row and row[0])

    # -- organisations, people, teams ------------------------------------------------------------

    def people(self, conn: psycopg.Connection[Any]) -> None:
        sizes, rng = self.sizes, self.rng
        started = time.perf_counter()
        self.orgs = [Org(uuid.uuid4()) for _ in range(sizes.orgs)]
        created = _ts(self.now - timedelta(days=400))
        self.counts["organisations"] = copy_lines(
            conn,
            "organisations",
            "id, name, slug, created_at, updated_at, search_language",
            (
                f"{o.id}\tOrganisation {k}\tbench-org-{k}-{o.id.hex[:6]}\t{created}"
                f"\t{created}\ten\n"
                for k, o in enumerate(self.orgs)
            ),
        )
        self.timed("organisations", started)

        users: list[str] = []
        teams: list[str] = []
        memberships: list[str] = []
        for k, org in enumerate(self.orgs):
            people = sizes.big_people if k == 0 else sizes.other_people
            team_count = max(1, (people - 1) // sizes.team_size)
            org.teams = [uuid.uuid4() for _ in range(team_count)]
            org.members = [[] for _ in range(team_count)]
            for n, team_id in enumerate(org.teams):
                teams.append(
                    f"{team_id}\t{org.id}\tTeam {n + 1}\tteam-{n + 1}\t{created}\t{created}\n"
                )
            for i in range(people):
                user_id = uuid.uuid4()
                org.people.append(user_id)
                if i == 0:
                    role = "admin"
                    org.admin = user_id
                else:
                    team = (i - 1) % team_count
                    lead = i - 1 < team_count
                    role = "manager" if lead else "rep"
                    org.team_of[user_id] = team
                    org.members[team].append(user_id)
                    if not lead:
                        org.reps.append(user_id)
                    memberships.append(
                        f"{org.teams[team]}\t{user_id}\t{'lead' if lead else 'member'}\t{org.id}"
                        f"\t{created}\n"
                    )
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                users.append(
                    f"{user_id}\t{org.id}\tp{i}@o{k}-{org.id.hex[:6]}.bench.example.com\t{name}"
                    f"\tp{i}\t{role}\tt\tUTC\t{created}\t{created}\n"
                )
        started = time.perf_counter()
        self.counts["users"] = copy_lines(
            conn,
            "users",
            "id, org_id, email, display_name, handle, role, is_active, time_zone, created_at, "
            "updated_at",
            users,
        )
        self.timed("users", started)
        started = time.perf_counter()
        self.counts["teams"] = copy_lines(
            conn, "teams", "id, org_id, name, handle, created_at, updated_at", teams
        )
        self.counts["team_memberships"] = copy_lines(
            conn, "team_memberships", "team_id, user_id, role, org_id, created_at", memberships
        )
        self.timed("teams", started)

    # -- deals and videos ------------------------------------------------------------------------

    def _split(self, total: int) -> list[int]:
        """How many of `total` rows each organisation gets: 40% the largest, the rest evenly."""
        big = round(total * self.sizes.big_share)
        rest = total - big
        others = self.sizes.orgs - 1
        return [big] + [rest // others + (1 if n < rest % others else 0) for n in range(others)]

    def _attributes(self) -> dict[str, Any]:
        rng = self.rng
        return {
            "industry": rng.choice(INDUSTRIES),
            "stage": rng.choice(STAGES),
            "region": rng.choice(REGIONS),
            "competitors": rng.sample(COMPETITORS, rng.randint(0, 3)),
        }

    def deals(self, conn: psycopg.Connection[Any]) -> None:
        started = time.perf_counter()
        created = _ts(self.now - timedelta(days=380))
        lines = []
        for org, videos in zip(self.orgs, self._split(self.sizes.videos), strict=True):
            for n in range(max(1, videos // DEAL_EVERY)):
                deal_id = uuid.uuid4()
                org.deals.append(deal_id)
                owner = self.rng.choice(org.people[1:] or org.people)
                attributes = json.dumps(self._attributes())
                lines.append(
                    f"{deal_id}\t{org.id}\tbench\t{n}\t{self.words.text(2, 4).title()}"
                    f"\t{self.words.text(1, 2).title()}\t{owner}\t{attributes}\t{created}"
                    f"\t{created}\n"
                )
        self.counts["deals"] = copy_lines(
            conn,
            "deals",
            "id, org_id, source, external_id, name, account, owner_id, attributes, created_at, "
            "updated_at",
            lines,
        )
        self.timed("deals", started)

    def videos(self, conn: psycopg.Connection[Any], with_deal: bool) -> None:
        rng, words = self.rng, self.words
        started = time.perf_counter()
        year_s = 365 * 86_400
        for k, (org, count) in enumerate(
            zip(self.orgs, self._split(self.sizes.videos), strict=True)
        ):
            org.first_video = len(self.video_ids)
            org.videos = count
            makers = org.people[1:] or org.people
            for _ in range(count):
                at = self.now - timedelta(seconds=rng.random() * year_s)
                self.video_ids.append(uuid7_at(rng, at))
                self.video_org.append(k)
                self.video_owner.append(rng.choice(makers))
                self.video_created.append(at)
                self.video_duration.append(rng.randint(30, 300) * 1000)

        def lines() -> Iterator[str]:
            for i, video_id in enumerate(self.video_ids):
                org = self.orgs[self.video_org[i]]
                title = words.text(3, 8).capitalize()[:200]
                description = words.text(5, 40) if rng.random() < 0.7 else ""
                at = _ts(self.video_created[i])
                deal = f"\t{rng.choice(org.deals)}" if with_deal else ""
                yield (
                    f"{video_id}\t{org.id}\t{self.video_owner[i]}\t{title}\t{description}"
                    f"\t{json.dumps(self._attributes())}\tready\t100\t1"
                    f"\t{self.video_duration[i]}\t{at}\t{at}\t{at}\t{at}{deal}\n"
                )

        self.counts["videos"] = copy_lines(
            conn,
            "videos",
            "id, org_id, owner_id, title, description, deal_attributes, status, progress, "
            "source_version, duration_ms, created_at, updated_at, playable_at, ready_at"
            + (", deal_id" if with_deal else ""),
            lines(),
        )
        self.timed("videos", started)

    # -- shares ----------------------------------------------------------------------------------

    def shares(self, conn: psycopg.Connection[Any]) -> None:
        rng = self.rng
        started = time.perf_counter()
        share_lines: list[str] = []
        team_lines: list[str] = []
        big_teams = len(self.orgs[0].teams)
        spread = max(1, round(REP_SHARE * big_teams))
        self.team_received = [0] * big_teams
        for i, video_id in enumerate(self.video_ids):
            k = self.video_org[i]
            org = self.orgs[k]
            if k == 0:
                chosen = rng.sample(
                    range(big_teams), min(big_teams, rng.randint(1, 2 * spread - 1))
                )
                for team in chosen:
                    self.team_received[team] += 1
            elif rng.random() < 0.5:
                chosen = [rng.randrange(len(org.teams))]
            else:
                continue
            owner = self.video_owner[i]
            at = self.video_created[i] + timedelta(minutes=5)
            share_id = uuid7_at(rng, at)
            reached = sum(len(org.members[t]) for t in chosen) - (org.team_of.get(owner) in chosen)
            audience = json.dumps(
                {"user_ids": [], "team_ids": [str(org.teams[t]) for t in chosen], "list_ids": []}
            )
            share_lines.append(
                f"{share_id}\t{org.id}\t{video_id}\t{owner}\t\t{audience}\t{reached}"
                f"\t{_ts(at)}\t{_ts(at)}\n"
            )
            team_lines.extend(f"{share_id}\t{org.teams[t]}\n" for t in chosen)
        self.counts["shares"] = copy_lines(
            conn,
            "shares",
            "id, org_id, video_id, sender_id, message, audience, recipient_count, created_at, "
            "released_at",
            share_lines,
        )
        conn.execute("CREATE TEMP TABLE bench_share_teams (share_id uuid, team_id uuid)")
        copy_lines(conn, "bench_share_teams", "share_id, team_id", team_lines)
        self.timed("shares", started)
        started = time.perf_counter()
        done = conn.execute(
            "INSERT INTO share_recipients (org_id, share_id, user_id, video_id, state, queued_at, "
            "sent_at, watched_at) "
            "SELECT org_id, share_id, user_id, video_id, "
            "CASE WHEN watched THEN 'watched' ELSE 'sent' END, at, at, "
            "CASE WHEN watched THEN at + interval '1 day' END "
            "FROM (SELECT s.org_id, s.id AS share_id, m.user_id, s.video_id, "
            "s.created_at AS at, random() < 0.3 AS watched "
            "FROM bench_share_teams st JOIN shares s ON s.id = st.share_id "
            "JOIN team_memberships m ON m.team_id = st.team_id "
            "WHERE m.user_id <> s.sender_id ORDER BY s.id, m.user_id) AS r"
        )
        self.counts["share_recipients"] = done.rowcount
        self.timed("share_recipients", started)

    def curation(self, conn: psycopg.Connection[Any]) -> None:
        """What publishing and assigning grant, in every organisation: `ORG_COLLECTIONS`
        collections of `COLLECTION_ITEMS` videos published for the organisation, one published
        for each team, and `ORG_ASSIGNMENTS` videos assigned to everyone (one row each)."""
        rng = self.rng
        started = time.perf_counter()
        collections, teams, items, assignments = [], [], [], []
        for org in self.orgs:
            assert org.admin is not None
            at = _ts(self.now - timedelta(days=30))
            scopes = [None] * ORG_COLLECTIONS + list(org.teams)
            for team in scopes:
                collection_id = uuid.uuid4()
                visibility = "organisation" if team is None else "teams"
                collections.append(
                    f"{collection_id}\t{org.id}\t{org.admin}\tCurated\t{visibility}\t{at}\t{at}"
                    f"\t{at}\n"
                )
                if team is not None:
                    teams.append(f"{org.id}\t{collection_id}\t{team}\n")
                for n in range(COLLECTION_ITEMS):
                    video = self.video_ids[org.first_video + rng.randrange(org.videos)]
                    items.append(f"{uuid.uuid4()}\t{org.id}\t{collection_id}\t{n}\t{video}\t{at}\n")
            for _ in range(ORG_ASSIGNMENTS):
                video = self.video_ids[org.first_video + rng.randrange(org.videos)]
                assignments.append(
                    f"{uuid.uuid4()}\t{org.id}\t{org.admin}\t{video}\t{len(org.people)}"
                    f"\t{{}}\t{at}\t{at}\n"
                )
        self.counts["collections"] = copy_lines(
            conn,
            "collections",
            "id, org_id, owner_id, title, visibility, created_at, updated_at, published_at",
            collections,
        )
        copy_lines(conn, "collection_teams", "org_id, collection_id, team_id", teams)
        self.counts["collection_items"] = copy_lines(
            conn,
            "collection_items",
            "id, org_id, collection_id, position, video_id, created_at",
            items,
        )
        copy_lines(
            conn,
            "assignments",
            "id, org_id, assigned_by, video_id, person_count, audience, created_at, published_at",
            assignments,
        )
        done = conn.execute(
            "INSERT INTO assignees (org_id, assignment_id, user_id, state, assigned_at) "
            "SELECT a.org_id, a.id, u.id, 'not_started', a.created_at "
            "FROM assignments a JOIN users u ON u.org_id = a.org_id ORDER BY a.id, u.id"
        )
        self.counts["assignees"] = done.rowcount
        self.counts["curation"] = (
            self.counts["collections"] + self.counts["collection_items"] + done.rowcount
        )
        self.timed("curation", started)

    def measured_rep(self) -> uuid.UUID:
        """A rep of the team whose received videos are closest to 3% of the organisation's."""
        big = self.orgs[0]
        goal = REP_SHARE * big.videos
        team = min(range(len(big.teams)), key=lambda t: abs(self.team_received[t] - goal))
        reps = set(big.reps)
        return next(p for p in big.members[team] if p in reps)

    # -- comments and segments -------------------------------------------------------------------

    def _video_in(self, org: Org, skewed: bool) -> int:
        r = self.rng.random()
        return org.first_video + int(org.videos * (r * r if skewed else r))

    def comments(self, conn: psycopg.Connection[Any]) -> None:
        rng, words = self.rng, self.words
        started = time.perf_counter()
        split = self._split(self.sizes.comments)
        samples = 2_000

        def lines() -> Iterator[str]:
            for k, count in enumerate(split):
                org = self.orgs[k]
                for _ in range(count):
                    i = self._video_in(org, skewed=True)
                    ranks = words.ranks(rng.randint(5, 25))
                    body = " ".join(words.words[r] for r in ranks)
                    if k == 0:
                        if len(self.sample_comments) < samples:
                            self.sample_comments.append(body)
                        if len(self.rare) < 200:
                            self.rare.update(
                                words.words[r] for r in ranks if r >= RARE_FROM and r % 7 == 0
                            )
                    created = self.video_created[i]
                    at = created + (self.now - created) * rng.random()
                    yield (
                        f"{uuid7_at(rng, at)}\t{org.id}\t{self.video_ids[i]}"
                        f"\t{rng.choice(org.people)}\t{rng.randrange(self.video_duration[i])}"
                        f"\t{body}\t{_ts(at)}\t{_ts(at)}\n"
                    )

        self.counts["comments"] = copy_lines(
            conn,
            "comments",
            "id, org_id, video_id, author_id, at_ms, body, created_at, updated_at",
            lines(),
        )
        self.timed("comments", started)
        if self.triggers == "bulk":
            started = time.perf_counter()
            done = conn.execute(
                "INSERT INTO moment_counts (org_id, video_id, slot, comments, replies, reactions) "
                "SELECT org_id, video_id, at_ms / 100, count(*) FILTER (WHERE parent_id IS NULL), "
                "count(*) FILTER (WHERE parent_id IS NOT NULL), 0 FROM comments "
                "WHERE at_ms IS NOT NULL AND deleted_at IS NULL AND hidden_at IS NULL "
                "GROUP BY org_id, video_id, at_ms / 100"
            )
            self.counts["moment_counts"] = done.rowcount
            self.timed("moment_counts", started)

    def segments(self, conn: psycopg.Connection[Any]) -> None:
        words = self.words
        started = time.perf_counter()
        per_video: dict[int, int] = {}
        for k, count in enumerate(self._split(self.sizes.segments)):
            org = self.orgs[k]
            for _ in range(count):
                i = self._video_in(org, skewed=False)
                per_video[i] = per_video.get(i, 0) + 1
        self.counts["transcripts"] = copy_lines(
            conn,
            "transcripts",
            "id, org_id, video_id, source_version, status, engine, language, created_at, "
            "updated_at",
            (
                f"{uuid.uuid4()}\t{self.orgs[self.video_org[i]].id}\t{self.video_ids[i]}\t1\tdone"
                f"\tbench\ten\t{_ts(self.video_created[i])}\t{_ts(self.video_created[i])}\n"
                for i in sorted(per_video)
            ),
        )

        def lines() -> Iterator[str]:
            for i in sorted(per_video):
                org_id = self.orgs[self.video_org[i]].id
                for position in range(per_video[i]):
                    start = position * SEGMENT_MS
                    yield (
                        f"{uuid.uuid4()}\t{org_id}\t{self.video_ids[i]}\t{position}\t{start}"
                        f"\t{start + SEGMENT_MS}\t{words.text(8, 30)[:1000]}\n"
                    )

        self.counts["segments"] = copy_lines(
            conn,
            "transcript_segments",
            "id, org_id, video_id, position, start_ms, end_ms, text",
            lines(),
        )
        self.timed("segments", started)

    # -- search documents ------------------------------------------------------------------------

    def build_documents(self) -> float:
        """The documents of every video, built by the product's set-based path, a batch per
        transaction."""
        from fieldcast.db import Database
        from fieldcast.search.indexing import build
        from fieldcast.settings import normalise_database_url

        database = Database(normalise_database_url(self.url), pool_size=1)
        started = time.perf_counter()
        built = 0
        try:
            for start in range(0, len(self.video_ids), BUILD_BATCH):
                with database.unit_of_work() as session:
                    built += len(build(session, self.video_ids[start : start + BUILD_BATCH]))
                if (start // BUILD_BATCH) % 20 == 19:
                    elapsed = time.perf_counter() - started
                    log(f"built {built} documents in {elapsed:.1f} s ({built / elapsed:.0f}/s)")
        finally:
            database.dispose()
        elapsed = time.perf_counter() - started
        if built != len(self.video_ids):
            raise RuntimeError(f"{built} documents built for {len(self.video_ids)} videos")
        self.counts["search_documents"] = built
        log(f"built {built} search documents in {elapsed:.1f} s ({built / elapsed:.0f}/s)")
        return elapsed


# -- the query mix ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    kind: str
    params: tuple[tuple[str, str], ...]


def query_mix(database_url: str, seeded: Seeded, rng: random.Random) -> list[Probe]:
    """Queries of every kind, from the vocabulary and the largest organisation's texts."""
    from wordfreq import top_n_list

    vocabulary = [w for w in top_n_list("en", VOCABULARY) if w.isascii() and w.isalpha()]
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Words the English configuration keeps (not stop words), with their ranks.
        kept = {
            str(w)
            for (w,) in conn.execute(
                "SELECT w FROM unnest(%s::text[]) AS w "
                "WHERE to_tsvector('fieldcast_en', w) <> ''::tsvector",
                (vocabulary[: TWO_WORDS[1]],),
            ).fetchall()
        }
    common = [w for w in vocabulary[COMMON[0] : COMMON[1]] if w in kept and len(w) >= 4]
    middling = [w for w in vocabulary[TWO_WORDS[0] : TWO_WORDS[1]] if w in kept]
    n = QUERIES_PER_KIND
    no_prefix = ("prefix", "false")
    probes = [Probe("common", (("q", w), no_prefix)) for w in rng.sample(common, n)]
    rare = seeded.rare_words or vocabulary[RARE_FROM:]
    probes += [Probe("rare", (("q", w), no_prefix)) for w in rng.sample(rare, min(n, len(rare)))]
    probes += [
        Probe("two_words", (("q", " ".join(rng.sample(middling, 2))), no_prefix)) for _ in range(n)
    ]
    for body in rng.sample(seeded.sample_comments, n):
        parts = body.split()
        length = min(len(parts), rng.choice((2, 3)))
        start = rng.randrange(len(parts) - length + 1)
        probes.append(
            Probe("phrase", (("q", '"' + " ".join(parts[start : start + length]) + '"'), no_prefix))
        )
    probes += [
        Probe("prefix", (("q", w[: rng.randint(3, min(5, len(w)))]), ("prefix", "true")))
        for w in rng.sample(common, n)
    ]
    for _ in range(n // 2):
        probes.append(Probe("attribute", (("attr", f"industry:{rng.choice(INDUSTRIES)}"),)))
        probes.append(
            Probe(
                "attribute",
                (
                    ("attr", f"stage:{rng.choice(STAGES)}"),
                    ("attr", f"competitors:{rng.choice(COMPETITORS)}"),
                    ("attr_match", "any"),
                ),
            )
        )
    probes += [
        Probe(
            "attribute_word",
            (
                ("q", rng.choice(common)),
                ("attr", f"-region:{rng.choice(REGIONS)}"),
                ("attr", f"industry:{rng.choice(INDUSTRIES)}|{rng.choice(INDUSTRIES)}"),
                no_prefix,
            ),
        )
        for _ in range(n)
    ]
    return probes


def sign_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    response = session.post(
        f"{base}/api/v1/auth/token",
        json={"email": email, "password": harness.PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return session


def timed_get(session: requests.Session, url: str, params: Any = None) -> tuple[float, Any]:
    started = time.perf_counter()
    response = session.get(url, params=params, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} {params}: {response.status_code} {response.text[:500]}")
    return elapsed, response.json()


@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, list[int]] = field(default_factory=dict)

    def add(self, key: str, ms: float) -> None:
        self.samples.setdefault(key, []).append(ms)


def measure(
    base: str,
    sessions: dict[str, requests.Session],
    probes: list[Probe],
    deals: dict[str, list[str]],
    rounds: int,
    rng: random.Random,
) -> Timings:
    """Sequentially, one request at a time: each query of the mix as each person (search,
    facets, /me, and a deal's recommendations when measured), a warm-up round first."""
    timings = Timings()
    plan = [(who, probe) for who in sessions for probe in probes]
    for round_ in range(rounds + 1):
        record = round_ > 0
        rng.shuffle(plan)
        for who, probe in plan:
            session = sessions[who]
            ms, page = timed_get(session, f"{base}/api/v1/search", list(probe.params))
            if record:
                timings.add(f"search:{who}", ms)
                timings.add(f"search:{who}:{probe.kind}", ms)
                timings.hits.setdefault(probe.kind, []).append(len(page["items"]))
            ms, _ = timed_get(session, f"{base}/api/v1/search/facets", list(probe.params))
            if record:
                timings.add(f"facets:{who}", ms)
            ms, _ = timed_get(session, f"{base}/api/v1/me")
            if record:
                timings.add("me", ms)
            if deals.get(who):
                deal = rng.choice(deals[who])
                ms, _ = timed_get(session, f"{base}/api/v1/deals/{deal}/recommendations")
                if record:
                    timings.add(f"recommendations:{who}", ms)
        log(f"round {round_} of {rounds}{'' if record else ' (warm-up, not counted)'} done")
    return timings


def fresh(base: str, rep: requests.Session, video_id: str, tries: int) -> list[float]:
    """Seconds from a comment's POST until searching for its made-up word finds its video."""
    rng = random.Random()
    found_s = []
    for _ in range(tries):
        word = "zq" + "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(8))
        started = time.perf_counter()
        response = rep.post(
            f"{base}/api/v1/videos/{video_id}/comments",
            json={"body": f"the {word} part is where it turns", "at_ms": 1000},
            timeout=60,
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST comment: {response.status_code} {response.text[:500]}")
        while True:
            _, page = timed_get(rep, f"{base}/api/v1/search", {"q": word, "prefix": "false"})
            if any(item["video"]["id"] == video_id for item in page["items"]):
                break
            if time.perf_counter() - started > FRESH_TIMEOUT_S:
                raise RuntimeError(f"a comment's word was not found within {FRESH_TIMEOUT_S} s")
            time.sleep(FRESH_POLL_S)
        found_s.append(time.perf_counter() - started)
        log(f"a new comment was found by search {found_s[-1]:.3f} s after its POST began")
    return found_s


def explain(database_url: str, who: str, user_id: uuid.UUID, probes: list[Probe]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the candidate query of some probes, to stderr."""
    from fieldcast.db import Database
    from fieldcast.models.accounts import User
    from fieldcast.policy import Principal
    from fieldcast.search import engine, ranking
    from fieldcast.search.query import parse
    from fieldcast.settings import normalise_database_url

    database = Database(normalise_database_url(database_url), pool_size=1)
    try:
        with database.unit_of_work() as session:
            user = session.get(User, user_id)
            assert user is not None
            principal = Principal(user=user)
            config = engine.config_of(session, principal.org_id)
            for probe in probes:
                params = dict(probe.params)
                query = parse(params["q"], prefix=params.get("prefix") != "false")
                tsquery = engine.tsquery(config, query.tsquery())
                # As the engine's search takes them: for an admin, the rank index walked or
                # the matches sorted, as the planner's estimate says.
                walk = engine.walk_pays(session, principal, tsquery, ranking.CANDIDATES)
                stmt = engine.matching(principal, tsquery, engine.Filters(), walk=walk).limit(
                    ranking.CANDIDATES
                )
                connection = session.connection()
                compiled = stmt.compile(
                    dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
                )
                plan = [
                    str(row[0])
                    for row in connection.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), compiled.params
                    )
                ]
                how = "planner's choice" if walk else "matches sorted"
                log(
                    f"EXPLAIN candidates, {who}, {probe.kind} {params['q']!r} ({how}): "
                    f"{plan[-1].strip()}"
                )
                for line in plan[:-1]:
                    harness.log("    " + line)
    finally:
        database.dispose()


def statement_times(database_url: str, who: str, user_id: uuid.UUID, probes: list[Probe]) -> None:
    """Each SQL statement of one search and one facets call (the engine's own code, in this
    process) of some probes, with its time, to stderr: where a slow request spends it."""
    from sqlalchemy import event

    from fieldcast.db import Database
    from fieldcast.models.accounts import User
    from fieldcast.policy import Principal
    from fieldcast.search import engine
    from fieldcast.settings import normalise_database_url

    database = Database(normalise_database_url(database_url), pool_size=1)
    spent: list[tuple[float, str]] = []
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *rest: Any) -> None:
        spent.append(((time.perf_counter() - started.pop()) * 1000, " ".join(statement.split())))

    event.listen(database.engine, "before_cursor_execute", before)
    event.listen(database.engine, "after_cursor_execute", after)
    try:
        with database.unit_of_work() as session:
            user = session.get(User, user_id)
            assert user is not None
            principal = Principal(user=user)
            for probe in probes:
                params = dict(probe.params)
                prefix = params.get("prefix") != "false"
                for name, call in (("search", engine.search), ("facets", engine.facets)):
                    spent.clear()
                    begun = time.perf_counter()
                    call(session, principal, params["q"], engine.Filters(), prefix=prefix)
                    total = (time.perf_counter() - begun) * 1000
                    log(f"{name}, {who}, {probe.kind} {params['q']!r}: {total:.1f} ms in all")
                    for ms, statement in spent:
                        harness.log(f"    {ms:7.1f} ms  {statement[:110]}")
    finally:
        database.dispose()


def has_recommendations(base: str) -> bool:
    spec = requests.get(f"{base}/openapi.json", timeout=30).json()
    return any(
        path.startswith("/api/v1/deals/") and path.endswith("/recommendations")
        for path in spec.get("paths", {})
    )


def quantiles(values: list[float]) -> tuple[float, float]:
    return round(p95(values), 1), round(statistics.median(values), 1)


def run_size(sizes: Sizes, rounds: int, tries: int, triggers: str) -> dict[str, Any]:
    log(
        f"size {sizes.name}: {sizes.videos} videos, {sizes.comments} comments, "
        f"{sizes.segments} segments, {sizes.orgs} organisations"
    )
    extra = {"COMMENTS_PER_MINUTE": UNLIMITED_PER_MINUTE}
    with scratch_environment(**extra) as env:
        database_url = env["DATABASE_URL"]
        started = time.perf_counter()
        seeded = Seeder(database_url, sizes, triggers).run()
        seed_total_s = time.perf_counter() - started
        log(f"seeded in {seed_total_s:.1f} s; the rep sees {seeded.rep_sees_videos} videos")
        rng = random.Random(sizes.videos)
        probes = query_mix(database_url, seeded, rng)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        web = ["web", "--bind", f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS)]
        with running(env, [web, *[NON_MEDIA_WORKER] * WORKERS, ["scheduler"]]):
            wait_until_up(base)
            wait_for_workers(env["REDIS_URL"], WORKERS)
            log("the API and the workers are up")
            sessions = {
                "rep": sign_in(base, seeded.rep_email),
                "admin": sign_in(base, seeded.admin_email),
            }
            deals: dict[str, list[str]] = {}
            if not has_recommendations(base):
                recommendations = "no: the API has no /api/v1/deals/{id}/recommendations route"
            elif not seeded.deals_table:
                recommendations = "no: the database has no deals table"
            else:
                recommendations = "yes"
                deals = visible_deals(database_url, seeded)
            log(f"recommendations measured: {recommendations}")
            for who, user_id in (("rep", seeded.rep_id), ("admin", seeded.admin_id)):
                chosen = [next(p for p in probes if p.kind == k) for k in ("common", "rare")]
                chosen.append(next(p for p in probes if p.kind == "prefix"))
                explain(database_url, who, user_id, chosen)
                statement_times(database_url, who, user_id, chosen)
            started = time.perf_counter()
            timings = measure(base, sessions, probes, deals, rounds, rng)
            measured_s = time.perf_counter() - started
            with psycopg.connect(database_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT v.id FROM videos v WHERE v.org_id = %(org)s AND v.owner_id <> %(u)s "
                    "AND v.id IN (SELECT video_id FROM share_recipients WHERE user_id = %(u)s) "
                    "LIMIT 1",
                    {"org": seeded.big.id, "u": seeded.rep_id},
                ).fetchone()
            assert row is not None, "the rep receives videos"
            fresh_samples = sorted(fresh(base, sessions["rep"], str(row[0]), tries))
    return figures_of(
        sizes, seeded, timings, fresh_samples, measured_s, seed_total_s, recommendations
    )


def visible_deals(database_url: str, seeded: Seeded) -> dict[str, list[str]]:
    """Deals to ask recommendations for: any of the big organisation's for the admin; for the
    rep, their own open deals ("my deals": 20 of the seeded deals are handed to them here, as a
    CRM sync would, since only a deal's owner, team, managers, enablement and admins read it)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        admin = conn.execute(
            "SELECT id FROM deals WHERE org_id = %s ORDER BY random() LIMIT 20", (seeded.big.id,)
        ).fetchall()
        rep = conn.execute(
            "UPDATE deals SET owner_id = %(u)s, outcome = 'open' WHERE id IN ("
            " SELECT id FROM deals WHERE org_id = %(o)s ORDER BY random() LIMIT 20) RETURNING id",
            {"o": seeded.big.id, "u": seeded.rep_id},
        ).fetchall()
    return {"admin": [str(r[0]) for r in admin], "rep": [str(r[0]) for r in rep]}


def figures_of(
    sizes: Sizes,
    seeded: Seeded,
    timings: Timings,
    fresh_samples: list[float],
    measured_s: float,
    seed_total_s: float,
    recommendations: str,
) -> dict[str, Any]:
    samples = timings.samples
    out: dict[str, Any] = {"size": sizes.name}
    for operation in ("search", "facets", "recommendations"):
        for who in ("rep", "admin"):
            values = samples.get(f"{operation}:{who}")
            high, middle = quantiles(values) if values else (None, None)
            out[f"{operation}_p95_ms_{who}"] = high
            out[f"{operation}_p50_ms_{who}"] = middle
        highs = [out[f"{operation}_p95_ms_{w}"] for w in ("rep", "admin")]
        out[f"{operation}_p95_ms"] = None if None in highs else max(highs)
    out["baseline_me_p95_ms"], out["baseline_me_p50_ms"] = quantiles(samples["me"])
    me = out["baseline_me_p95_ms"]
    for operation in ("search", "facets", "recommendations"):
        value = out[f"{operation}_p95_ms"]
        out[f"{operation}_vs_me"] = None if value is None else round(value / me, 2)
    kinds = sorted(timings.hits)
    out["search_p95_ms_by_kind"] = {
        kind: {who: round(p95(samples[f"search:{who}:{kind}"]), 1) for who in ("rep", "admin")}
        for kind in kinds
    }
    out["hits_by_kind"] = {
        kind: round(statistics.mean(values), 1) for kind, values in timings.hits.items()
    }
    out.update(
        {
            "fresh_s": round(p95(fresh_samples), 3),
            "fresh_median_s": round(statistics.median(fresh_samples), 3),
            "fresh_max_s": round(fresh_samples[-1], 3),
            "fresh_tries": len(fresh_samples),
            "recommendations_measured": recommendations,
            "samples": {key: len(v) for key, v in samples.items() if key.count(":") < 2},
            "measured_s": round(measured_s, 1),
            "seed_total_s": round(seed_total_s, 1),
            "seed_s": seeded.seed_s,
            "doc_build_s": round(seeded.doc_build_s, 1),
            "docs_per_s": round(seeded.counts["search_documents"] / seeded.doc_build_s),
            "organisations": sizes.orgs,
            "people": seeded.counts["users"],
            "largest_org_people": sizes.big_people,
            "largest_org_videos": seeded.big_videos,
            "videos_seeded": seeded.counts["videos"],
            "comments_seeded": seeded.counts["comments"],
            "segments_seeded": seeded.counts.get("segments", 0),
            "transcript_segments_table": seeded.segments_table,
            "deals_seeded": seeded.counts.get("deals", 0),
            "shares_seeded": seeded.counts["shares"],
            "share_recipients_seeded": seeded.counts["share_recipients"],
            "rep_sees_videos": seeded.rep_sees_videos,
            "rep_sees_share": round(seeded.rep_sees_videos / seeded.big_videos, 4),
            "queries_per_person": sum(
                len(v) for k, v in samples.items() if k.startswith("search:rep:")
            ),
            "clients": "one, sequential requests",
        }
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--scale", choices=("base", "full", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of the mix")
    parser.add_argument("--fresh", type=int, default=5, help="new comments timed until found")
    parser.add_argument(
        "--comment-triggers",
        choices=("bulk", "fire"),
        default="bulk",
        help="bulk: the comments' triggers are off during the COPY and moment_counts is filled "
        "in one statement; fire: they run for every row",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="600 videos, 3,000 comments and segments, 5 organisations, 1 round, 2 tries",
    )
    args = parser.parse_args(argv)
    if args.quick:
        names = ["quick"]
        args.rounds, args.fresh = 1, 2
    else:
        names = ["base", "full"] if args.scale == "both" else [args.scale]
    if args.rounds < 1 or args.fresh < 1:
        parser.error("--rounds and --fresh must be at least 1")
    by_size = {
        name: run_size(SCALES[name], args.rounds, args.fresh, args.comment_triggers)
        for name in names
    }
    last = by_size[names[-1]]
    figures: dict[str, Any] = {"benchmark": "search", **last}
    if len(by_size) > 1:
        figures["sizes"] = by_size
    if "base" in by_size and "full" in by_size:
        base, full = by_size["base"], by_size["full"]
        figures["growth"] = round(full["search_p95_ms"] / base["search_p95_ms"], 2)
        for suffix, key in (
            ("rep", "search_p95_ms_rep"),
            ("admin", "search_p95_ms_admin"),
            ("facets", "facets_p95_ms"),
        ):
            figures[f"growth_{suffix}"] = round(full[key] / base[key], 2)
    else:
        figures["growth"] = None
    figures["targets"] = TARGETS
    figures["met"] = {
        name: None if figures.get(name) is None else figures[name] <= target
        for name, target in TARGETS.items()
    }
    log(
        f"{', '.join(names)}: search p95 rep {figures['search_p95_ms_rep']} ms, admin "
        f"{figures['search_p95_ms_admin']} ms; facets p95 {figures['facets_p95_ms']} ms; "
        f"/me p95 {figures['baseline_me_p95_ms']} ms; fresh {figures['fresh_s']} s; "
        f"growth {figures['growth']}"
    )
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
