"""The BI export: the organisation's facts (people, teams, views, progress, assignments,
shares, comments, reactions, ...) as CSV or Parquet, streamed, and incremental by cursor.

`facts` says what each fact is (its table and columns, none of them secret), `cursor` what
"changed since" means across transactions committing out of order, `streams` how the rows leave
without the process growing. The same facts are read-only SQL views in the `bi` schema
(migration 0031, docs/bi.md) for a BI tool that connects to the database.
"""
