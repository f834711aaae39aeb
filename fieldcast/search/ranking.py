"""How search orders what it found: relevance, engagement and freshness in one score.

    engagement = comments + reactions + 2 x (likes + answer votes) + 5 x accepted answers
                 + 2 x shares + 3 x `watched` recipients
    rank_key   = log10(1 + engagement) + created_at / 30 days
    score      = 3 x relevance + rank_key

`relevance` is PostgreSQL's `ts_rank_cd` over the document with weights title 1.0,
description / attributes / deal / author 0.4, transcript 0.2, comments and attachments 0.1,
normalised to 0..1 (rank / (rank + 1)). So ten times the engagement is worth what 30 days of
age costs, and a title match beats a comment match by about a month or a tenfold engagement.

`rank_key` does not change as time passes (only the engagement moves it), so documents keep it
in an index: a query first takes the matching documents in `rank_key` order, at most
`CANDIDATES` of them, and orders those by `score`. A relevant match with little engagement
that is older than its `CANDIDATES` best-ranked peers is not seen for that query; a more
precise query finds it.
"""

from __future__ import annotations

WEIGHT_VOTE = 2
WEIGHT_ACCEPTED = 5
WEIGHT_SHARE = 2
WEIGHT_WATCHED = 3
FRESHNESS_S = 30 * 86_400
RELEVANCE = 3.0
# ts_rank_cd's weights, in its order {D, C, B, A}.
TEXT_WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"
# rank / (rank + 1)
NORMALISATION = 32
CANDIDATES = 300
