"""notify: a self-hosted, real-time in-app notification service."""

__version__ = "0.1.0"
