"""The HTTP API: blueprints, schemas, authentication and the API conventions."""
