"""Learning programs: assignments, reminders and digests, and the rules that assign."""
