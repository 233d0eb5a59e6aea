"""Live delivery: the hub that maps (tenant, user) to open stream sessions."""
