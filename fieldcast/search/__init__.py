"""Discovery: full-text search over what the caller may see, facets, and what helps a deal."""
