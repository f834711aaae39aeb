"""Channels that reach people: push, inbox, chat."""
