"""Many organisations on one deployment: what each may store, and how long what it stores is
kept."""
