"""docs/market.md shows real output: what ``ppr market`` prints, and the table of the
rules on the bundled benches as ``benchmarks/market.py --bundled`` prints it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from router.cli import main

REPO = Path(__file__).resolve().parents[1]
TEXT = (REPO / "docs" / "market.md").read_text()


def test_docs_show_what_ppr_market_prints(capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the docs name bench/data/... from the repository's root
    blocks = [b.split("```")[0] for b in TEXT.split("```\n$ ")[1:]]
    assert len(blocks) == 3
    for block in blocks:
        command, _, shown = block.partition("\n")
        code = main(command.split()[1:])
        out, _ = capsys.readouterr()
        assert code == 0 and out == shown, command


def test_the_comparison_table_is_what_the_benchmark_prints():
    spec = importlib.util.spec_from_file_location("market_bench", REPO / "benchmarks" / "market.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shown = TEXT.split("<!-- benchmarks/market.py --bundled -->\n")[1].split("\n<!-- end -->")[0]
    assert shown == "\n".join(module.bundled_table())
    assert "| microgrids-sop | combined-offer, no green pass |" in shown
