"""Benchmarks for notifyd: ``python -m bench`` (``make bench``); see docs/benchmarks.md."""

import os

# grpc's C core logs connection events (GOAWAY and the like) to stderr at INFO;
# the bench reports what matters itself.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
