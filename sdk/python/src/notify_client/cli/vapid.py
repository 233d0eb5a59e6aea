"""``notifyctl vapid-keys``: a new Web Push (VAPID, RFC 8292) key pair, made locally.

The private key is the raw 32-byte P-256 scalar in base64url, the form
``NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY`` reads; the public key is the
uncompressed point in base64url, what a page passes to
``pushManager.subscribe({applicationServerKey})``. Nothing leaves the
machine: no server is asked.
"""

from __future__ import annotations

import argparse
import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify_client.cli import exits, render


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_pair() -> tuple[str, str]:
    """(private, public), both base64url without padding."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(private), _b64url(public)


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    keys = commands.add_parser(
        "vapid-keys", parents=[common], help="make a Web Push (VAPID) key pair, locally"
    )
    keys.set_defaults(run=cmd_vapid_keys)


def cmd_vapid_keys(args: argparse.Namespace) -> int:
    private, public = new_pair()
    if args.json:
        render.print_json({"privateKey": private, "publicKey": public})
        return exits.OK
    print("# Web Push (VAPID) keys: keep the private key secret; browsers subscribe with")
    print("# the public key (pushManager.subscribe({applicationServerKey: ...})).")
    print(f"NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY={private}")
    print(f"VAPID_PUBLIC_KEY={public}")
    return exits.OK
