"""``ppr journal verify [FILE]``: check a journal's chain and signatures, and its end
against its witness (the signed head kept in the key store, or ``--witness FILE``).

Exit status 0: the journal verifies; 1: it does not (one line on stderr names the first
bad record and why, or says that records were cut off its end); 2: a usage mistake (no
such file, no trusted key to check against).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from firmware_bridge.keystore import DEFAULT_STORE, MANIFEST, KeyStore
from router.cli import UsageError
from router.journal import DEFAULT_JOURNAL, verify_journal
from router.journal.witness import Witness, check_witness, parse_witness

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
    cmd.add_argument(
        "--witness",
        metavar="FILE",
        type=Path,
        help="the journal's witness as JSON (the retained MQTT message 'journal'); by "
        "default the one the key store keeps",
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
    return key_store(store).signing_public_key()


def key_store(store: Path | None) -> KeyStore:
    if store is None and not (DEFAULT_STORE / MANIFEST).exists():
        raise UsageError(
            f"no trusted key to check the journal against: no key store in ./{DEFAULT_STORE}; "
            "give --keys DIR or --public-key HEX"
        )
    return KeyStore.open(store or DEFAULT_STORE)


def run_verify(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such journal file")
    key = trusted_key(args.store, args.public_key)
    report = verify_journal(args.file, key)
    if not report.ok:
        print(report.one_line(), file=sys.stderr)
        return EXIT_BAD
    witness = find_witness(args, report.genesis_hash)
    if witness is None:
        print(f"{report.one_line()}; no witness of its end to compare with")
        return 0
    verdict = check_witness(report, witness, key)
    if not verdict.ok:
        print(f"{args.file}: {verdict.text}", file=sys.stderr)
        return EXIT_BAD
    print(f"{report.one_line()}; {verdict.text}")
    return 0


def find_witness(args: argparse.Namespace, journal: bytes | None) -> Witness | None:
    if args.witness is not None:
        try:
            text = args.witness.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--witness {args.witness}: cannot read it: {exc}") from exc
        found = parse_witness(text)
        if found is None:
            raise UsageError(f"--witness {args.witness}: not a journal witness (JSON)")
        return found
    if args.public_key is not None or journal is None:
        return None
    stored = key_store(args.store).witness(journal.hex())
    return None if stored is None else parse_witness(stored)
