"""``ppr keys init|rotate|show``: the identity keys that seal slot-table headers."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import Scenario, bundled_path, load_scenario
from firmware_bridge.headers import DEFAULT_GRACE_FRAMES, Party
from firmware_bridge.keystore import DEFAULT_STORE, KeyStore


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions = {
        "init": "create a key store: identities for the controller, every router and "
        "every terminal of SCENARIO (default: the bundled bench-4)",
        "rotate": "start the next key epoch with a new controller identity; parties of "
        "SCENARIO missing from the store are added",
        "show": "print public keys and wire ids (never private material)",
    }
    for name, help_text in actions.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("scenario", nargs="?", type=Path, help="scenario file (TOML)")
        cmd.add_argument(
            "--keys",
            "--store",
            dest="store",
            metavar="DIR",
            type=Path,
            default=DEFAULT_STORE,
            help=f"key store directory (default: ./{DEFAULT_STORE})",
        )
        cmd.set_defaults(run=globals()[f"run_{name}"])
    sub.choices["rotate"].add_argument(
        "--all",
        action="store_true",
        help="also give every router and terminal a new identity (after a device "
        "compromise; the new private keys must then be provisioned to the devices)",
    )


def _scenario(path: Path | None, default_bundled: bool) -> Scenario | None:
    if path is None and not default_bundled:
        return None
    return load_scenario(path if path is not None else bundled_path())


def run_init(args: argparse.Namespace) -> int:
    scenario = _scenario(args.scenario, default_bundled=True)
    assert scenario is not None
    store = KeyStore.init(args.store, scenario)
    m = store.manifest
    print(
        f"created {args.store} for {scenario.name}: epoch 1, identities for the controller, "
        f"{len(m.routers)} routers and {len(m.terminals)} terminals\n"
        f"  private keys in {args.store}/epoch-0001/ (mode 0600); public keys: ppr keys show\n"
        f"  journal signing key (Ed25519, kept across rotations) in {args.store}/signing.key"
    )
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    store = KeyStore.open(args.store)
    before = store.epoch
    store.rotate(_scenario(args.scenario, default_bundled=False), all_parties=args.all)
    renewed = (
        "new identities for every party (provision the routers and meters anew)"
        if args.all
        else "a new controller identity (routers and terminals keep theirs)"
    )
    print(
        f"rotated {args.store}: epoch {before} -> {store.epoch}, {renewed}\n"
        f"  routers accept epoch {before} for {DEFAULT_GRACE_FRAMES} frames after their "
        f"first epoch-{store.epoch} table"
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    store = KeyStore.open(args.store)
    scenario = _scenario(args.scenario, default_bundled=False)
    m, epoch = store.manifest, store.epoch
    kept = ", ".join(str(e) for e in sorted(m.epochs))
    print(f"key store {args.store}: scenario {m.scenario}, epoch {epoch} (kept: {kept})")
    rows: list[tuple[str, str, str]] = [("controller", "-", store.public_key(epoch, None).hex())]
    for p in store.parties():
        rows.append((str(p), str(p.index), store.public_key(epoch, p).hex()))
    width = max(len(r[0]) for r in rows)
    print(f"  {'party'.ljust(width)}  wire id  X25519 public key (epoch {epoch})")
    for who, wire, key in rows:
        print(f"  {who.ljust(width)}  {wire.rjust(7)}  {key}")
    signing = m.signing or "none (add one with: ppr keys rotate)"
    print(f"  journal signing key (Ed25519, all epochs): {signing}")
    if scenario is not None:
        print(f"  transfers of {scenario.name} (wire id = position in the scenario):")
        print("  " + ", ".join(f"{t.id}={i}" for i, t in enumerate(scenario.transfers)))
        missing = _missing(store.parties(), scenario)
        if missing:
            print(f"  not in the store: {', '.join(missing)} (add them: ppr keys rotate SCENARIO)")
    return 0


def _missing(parties: list[Party], scenario: Scenario) -> list[str]:
    known = {(p.kind, p.name) for p in parties}
    wanted = [("router", r.id) for r in scenario.routers]
    wanted += [("terminal", t.id) for t in scenario.terminals]
    return [f"{kind} {name}" for kind, name in wanted if (kind, name) not in known]
