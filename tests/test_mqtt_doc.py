"""docs/mqtt.md: its generated parts match the topic list and the payload models."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.mqtt.doc import EXAMPLES, GENERATED, block
from router.mqtt.topics import TOPICS

DOC = Path(__file__).parents[1] / "docs" / "mqtt.md"
REGENERATE = "run: python -m router.mqtt.doc docs/mqtt.md"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_block_matches_the_code(name: str):
    text = block(DOC.read_text(encoding="utf-8"), name)
    assert text is not None, f"docs/mqtt.md lacks the '{name}' block markers"
    assert text == GENERATED[name](), f"docs/mqtt.md '{name}' is stale; {REGENERATE}"


def test_every_topic_with_a_payload_has_a_valid_example():
    for name, spec in TOPICS.items():
        if spec.model is None:
            continue
        example = EXAMPLES[name]
        assert isinstance(example, spec.model)
        again = spec.model.model_validate_json(example.model_dump_json())
        assert again == example


def test_every_field_is_explained():
    for spec in TOPICS.values():
        if spec.model is None:
            continue
        for field, info in spec.model.model_fields.items():
            assert info.description, f"{spec.model.__name__}.{field} has no description"
