"""One smorest Blueprint per resource."""
