"""The project carries its own design: README and docs link only inside the repository,
every relative link resolves, and docs/design.md documents every scenario field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from bench import models

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) outside code spans; images too
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The page without fenced code blocks (shell output there is not a link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name}: links that do not resolve in a clone: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_points_outside_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text and "DESIGN.md" not in text, (
        f"{page.name} refers to a design file a clone does not have; link docs/design.md"
    )


def test_link_checker_catches_a_broken_link(tmp_path: Path):
    # the checker itself: a page with one good and one broken link
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md) [bad](../shared/DESIGN.md)\n```\n[code](nowhere.md)\n```\n")
    targets = LINK.findall(_prose(page.read_text()))
    assert targets == ["there.md", "../shared/DESIGN.md"]
    assert [t for t in targets if not (page.parent / t).exists()] == ["../shared/DESIGN.md"]


def _scenario_fields(model: type[BaseModel], seen: set[type]) -> set[str]:
    """Every field name of the scenario models, nested sections included."""
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():
        names.add(name)
        for sub in _models_in(field.annotation):
            names |= _scenario_fields(sub, seen)
    return names


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in getattr(annotation, "__args__", ()):
        found += _models_in(arg)
    return found


def test_design_documents_every_scenario_field():
    table = _prose((ROOT / "docs" / "design.md").read_text(encoding="utf-8"))
    table = table.split("## Scenario file", 1)[1].split("\n## ", 1)[0]
    codes = re.findall(r"`([^`]+)`", table)
    documented = {word for code in codes for word in re.findall(r"[a-z_]+", code)}
    missing = sorted(_scenario_fields(models.Scenario, set()) - documented)
    assert not missing, f"docs/design.md's scenario table does not name: {missing}"


# commands the docs tell a reader to run -> the Debian package that has them
DEBIAN_COMMANDS = {"mosquitto_pub": "mosquitto-clients", "mosquitto_sub": "mosquitto-clients",
                   "mosquitto_passwd": "mosquitto", "socat": "socat"}  # fmt: skip


def test_setup_installs_what_the_docs_use():
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    packages = re.search(r"^DEBIAN_PACKAGES=\(([^)]*)\)", setup, flags=re.M)
    assert packages is not None
    used = {c for page in PAGES for c in DEBIAN_COMMANDS if c in page.read_text(encoding="utf-8")}
    assert "mosquitto_pub" in used  # docs/mqtt.md's examples
    missing = {DEBIAN_COMMANDS[c] for c in used} - set(packages.group(1).split())
    assert not missing, f"scripts/setup.sh does not install {missing}, which the docs use"
