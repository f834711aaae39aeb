"""Retention: what each organisation keeps, and for how long."""
