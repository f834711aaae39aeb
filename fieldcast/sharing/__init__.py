"""Distribution lists and shares: who gets a video, and what became of each of them.

`lists` keeps distribution lists, `audience` resolves whom a share reaches, `shares` makes and
releases shares, `fanout` turns a share into recipient rows, inbox items and pushes (outbox
tasks), and `tracking` moves each recipient's state forward. They import one another in one
direction only: `shares` uses `lists`, `audience` and `fanout`; `lists` uses `audience`;
`fanout` uses `tracking`.
"""
