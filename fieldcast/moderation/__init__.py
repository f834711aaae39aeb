"""Moderation: reports of videos and comments, what admins decide on them, and reading the
audit log (`fieldcast.audit` writes it, from every package that changes people, permissions
or content)."""
