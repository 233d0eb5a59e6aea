"""The contract's encodings: domain values <-> protobuf, and proto3 JSON.

Shared by the transports (``notify.api``) and by providers that send the
contract's messages elsewhere (webhooks), so neither reaches into the other.
"""
