"""Use cases: what the service decides, over the ports in ``notify.core.ports``."""
