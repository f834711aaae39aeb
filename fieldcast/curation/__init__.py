"""Curation: collections of videos and clips, features, and the top lists."""
