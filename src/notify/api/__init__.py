"""Transports: the Connect/gRPC/gRPC-Web services and their plumbing."""
