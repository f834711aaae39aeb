"""Insights: how videos are watched (viewer insights) and what learning comes of them
(learning metrics), for the people who answer for them."""
