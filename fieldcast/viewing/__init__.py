"""Viewing: views, the segments players report, and each person's progress on a video."""
