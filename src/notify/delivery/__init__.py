"""Providers: how a stored row reaches its channel (in-app first; more to come)."""
