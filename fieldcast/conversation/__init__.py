"""Conversation at the timeline: comments, threads, @mentions, reactions and moments."""
