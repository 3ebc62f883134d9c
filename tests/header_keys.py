"""Real X25519 identities and derived header keys for tests (no key store, no mocks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench import Scenario
from firmware_bridge.headers import KeyRing, LayerKey, Party, SealingKeys, layer_key
from firmware_bridge.headers.errors import Layer


@dataclass
class Identities:
    """One controller identity per epoch, and device identities that persist."""

    controller: dict[int, X25519PrivateKey] = field(default_factory=dict)
    devices: dict[tuple[str, str], X25519PrivateKey] = field(default_factory=dict)

    def device(self, party: Party) -> X25519PrivateKey:
        return self.devices.setdefault((party.kind, party.name), X25519PrivateKey.generate())

    def ctl(self, epoch: int) -> X25519PrivateKey:
        return self.controller.setdefault(epoch, X25519PrivateKey.generate())

    def sealing(self, layer: Layer, party: Party, epoch: int, router_id: str) -> LayerKey:
        peer = self.device(party).public_key()
        return layer_key(layer, self.ctl(epoch), peer, party, epoch, router_id, controller=True)

    def opening(self, layer: Layer, party: Party, epoch: int, router_id: str) -> LayerKey:
        peer = self.ctl(epoch).public_key()
        return layer_key(layer, self.device(party), peer, party, epoch, router_id, controller=False)

    def ring(self, layer: Layer, party: Party, epochs: list[int], router_id: str) -> KeyRing:
        keys = {e: self.opening(layer, party, e, router_id) for e in epochs}
        return KeyRing(party, router_id, keys)


def sealing_keys(ids: Identities, scenario: Scenario, epoch: int) -> SealingKeys:
    """The controller's keys for every router and terminal, wire ids in scenario order."""
    outer = {
        r.id: ids.sealing("outer", Party("router", r.id, i), epoch, r.id)
        for i, r in enumerate(scenario.routers)
    }
    inner = {
        t.id: ids.sealing("inner", Party("terminal", t.id, i), epoch, t.port.router)
        for i, t in enumerate(scenario.terminals)
    }
    return SealingKeys(epoch, outer, inner)


def router_party(scenario: Scenario, router_id: str) -> Party:
    return Party("router", router_id, [r.id for r in scenario.routers].index(router_id))


def terminal_party(scenario: Scenario, terminal_id: str) -> Party:
    return Party("terminal", terminal_id, [t.id for t in scenario.terminals].index(terminal_id))
