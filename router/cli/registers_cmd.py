"""``ppr registers [--json]``: the router register map (the wire contract)."""

from __future__ import annotations

import argparse
import json

from firmware_bridge.register_doc import render_text
from firmware_bridge.registers import register_map


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the map as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(register_map().to_json(), indent=1))
    else:
        print(render_text(), end="")
    return 0
