"""Fieldcast's domain: models and services shared by the API and the workers."""
