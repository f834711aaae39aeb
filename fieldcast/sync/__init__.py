"""Delta sync: opaque sync tokens, what changed since one, and what was removed (tombstones).

The feed, the videos list and the inbox use it to answer `updated_since` with only what
changed, so an app back from a day offline refreshes with one small request.
"""
