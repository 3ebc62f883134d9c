"""``ppr journal verify [FILE]``: check a journal's chain and signatures.

Exit status 0: the journal verifies; 1: it does not (one line on stderr names the first
bad record and why); 2: a usage mistake (no such file, no trusted key to check against).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from firmware_bridge.keystore import DEFAULT_STORE, MANIFEST, KeyStore
from router.cli import UsageError
from router.journal import DEFAULT_JOURNAL, verify_journal

EXIT_BAD = 1


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    help_text = (
        "check every record's hash chain and Ed25519 signature against a trusted key "
        "(the key store's journal signing key, or --public-key); exit 1 names the first "
        "bad record"
    )
    cmd = sub.add_parser("verify", help=help_text, description=help_text)
    cmd.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=DEFAULT_JOURNAL,
        help=f"journal file (default: {DEFAULT_JOURNAL})",
    )
    trust = cmd.add_mutually_exclusive_group()
    trust.add_argument(
        "--keys",
        "--store",
        dest="store",
        metavar="DIR",
        type=Path,
        help=f"key store holding the trusted signing key (default: ./{DEFAULT_STORE})",
    )
    trust.add_argument(
        "--public-key",
        metavar="HEX",
        help="the trusted Ed25519 public key, 64 hex digits (ppr keys show prints it)",
    )
    cmd.set_defaults(run=run_verify)


def trusted_key(store: Path | None, public_key: str | None) -> bytes:
    if public_key is not None:
        try:
            key = bytes.fromhex(public_key)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise UsageError(f"--public-key: expected 64 hex digits, got '{public_key}'")
        return key
    if store is None and not (DEFAULT_STORE / MANIFEST).exists():
        raise UsageError(
            f"no trusted key to check the journal against: no key store in ./{DEFAULT_STORE}; "
            "give --keys DIR or --public-key HEX"
        )
    return KeyStore.open(store or DEFAULT_STORE).signing_public_key()


def run_verify(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such journal file")
    report = verify_journal(args.file, trusted_key(args.store, args.public_key))
    if report.ok:
        print(report.one_line())
        return 0
    print(report.one_line(), file=sys.stderr)
    return EXIT_BAD
