"""The key store on disk: X25519 identities of the controller, routers and terminals.

Layout (``--keys``, default ``./ppr-keys``)::

    store.json        public material and wire ids; replaced last, so it is the commit point
    epoch-0001/       private keys of one epoch, PEM PKCS#8, mode 0600
        controller.key  router-R1.key  terminal-PV1.key ...
    signing.key       the controller's Ed25519 key that signs the journal, mode 0600
    .lock             serialises writers

Wire ids are positions in ``store.json``'s ``routers`` and ``terminals`` lists: the
scenario's order at ``init``, and parties a later scenario adds are appended by
``rotate``, so an id never changes while the store lives. A rotation starts epoch N+1
with a new controller identity (and, with ``all_parties``, new device identities);
the store keeps epochs N and N+1 so routers can honour the grace window. Private key
files readable by group or others are refused, as ssh does.

The journal signing key is not per epoch: it is the controller's identity as the author
of the journal, so one journal verifies against one public key however often the
sealing keys rotate. ``init`` creates it, ``rotate`` keeps it (and creates it in a
store made before it existed); its public half is in ``store.json`` (``signing``), so a
verifier needs no private key.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench import Scenario
from firmware_bridge.files import TooOpenError, fsync_dir, read_owner_only, write_file
from firmware_bridge.headers.commands import CommandKey, command_key
from firmware_bridge.headers.errors import KeyPermissionError, KeyStoreError, Layer
from firmware_bridge.headers.frame import SealingKeys
from firmware_bridge.headers.keys import KeyRing, Party, PartyKind, layer_key
from firmware_bridge.headers.layout import MAX_EPOCH, ROUTER

DEFAULT_STORE = Path("ppr-keys")
MANIFEST = "store.json"
SIGNING_KEY = "signing.key"  # Ed25519, signs the journal; kept across epochs
KEEP_EPOCHS = 2  # the current epoch and the one still in its grace window
SEALED_FRAMES = "sealed-frame"  # the highest frame number any controller sealed with it
KEEP_WITNESSES = 32  # journal heads kept with the reservation (one per journal, newest)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TerminalEntry(_Model):
    id: str
    router: str  # hosts the terminal's meter


class EpochEntry(_Model):
    created: str
    controller: str  # public keys, 64 hex digits
    routers: dict[str, str]
    terminals: dict[str, str]


class Manifest(_Model):
    format: Literal[1] = 1
    scenario: str
    epoch: int
    routers: tuple[str, ...]
    terminals: tuple[TerminalEntry, ...]
    epochs: dict[int, EpochEntry]
    signing: str | None = None  # Ed25519 public key (64 hex digits); None: store predates it


class Reservation(_Model):
    """``sealed-frame``: the highest frame number reserved, the epoch it was reserved under
    (below the store's epoch: no frame sealed under the current keys yet), and the last
    signed head of each journal that reserved here (the journal's witness, opaque)."""

    frame: int = Field(ge=0)
    epoch: int = Field(ge=0)
    journals: dict[str, dict[str, Any]] = {}


class FrameReservationError(KeyStoreError):
    """The frame reservation is missing or behind frames already sealed under the keys."""


class KeyStore:
    """An opened store. Every private key file it will use has been permission-checked."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest

    # --- opening, creating, rotating --------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> KeyStore:
        try:
            text = (path / MANIFEST).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyStoreError(
                f"{path}: no key store here; create one with: ppr keys init"
            ) from None
        except OSError as exc:
            raise KeyStoreError(f"{path}: cannot read the key store: {exc}") from exc
        try:
            manifest = Manifest.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise KeyStoreError(f"{path / MANIFEST}: {where}: {first['msg']}") from None
        store = cls(path, manifest)
        store._check_permissions()
        return store

    @classmethod
    def init(cls, path: Path, scenario: Scenario) -> KeyStore:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise KeyStoreError(
                f"{path}: a key store (or other files) already exists; use ppr keys rotate"
            )
        tmp = path.resolve().with_name(f".{path.resolve().name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(mode=0o700, parents=True)
            manifest = Manifest(
                scenario=scenario.name,
                epoch=1,
                routers=tuple(r.id for r in scenario.routers),
                terminals=tuple(
                    TerminalEntry(id=t.id, router=t.port.router) for t in scenario.terminals
                ),
                epochs={},
            )
            store = cls(tmp, manifest)
            store.manifest = store._write_epoch(1, previous=None, renew_devices=True)
            store.manifest = store._write_signing_key()
            store._write_reservation(Reservation(frame=0, epoch=0))  # nothing sealed yet
            write_file(tmp / MANIFEST, store.manifest.model_dump_json(indent=1).encode(), 0o644)
            os.replace(tmp, path)  # the whole store appears at once, or not at all
            fsync_dir(path.absolute().parent)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise KeyStoreError(f"{path}: cannot write the key store: {exc}") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(path, store.manifest)

    def rotate(self, scenario: Scenario | None = None, *, all_parties: bool = False) -> KeyStore:
        """Start the next epoch; add the parties ``scenario`` has and the store lacks."""
        try:
            with self._locked():
                return self._rotate(scenario, all_parties)
        except OSError as exc:
            raise KeyStoreError(f"{self.path}: cannot write the key store: {exc}") from exc

    def _rotate(self, scenario: Scenario | None, all_parties: bool) -> KeyStore:
        current = KeyStore.open(self.path).manifest  # re-read under the lock
        if current.epoch >= MAX_EPOCH:
            raise KeyStoreError(
                f"{self.path}: epoch {MAX_EPOCH} is the last; run ppr keys init anew"
            )
        routers, terminals = list(current.routers), {t.id: t for t in current.terminals}
        if scenario is not None:
            routers += [r.id for r in scenario.routers if r.id not in routers]
            for t in scenario.terminals:
                terminals[t.id] = TerminalEntry(id=t.id, router=t.port.router)
        staged = KeyStore(
            self.path,
            current.model_copy(
                update={"routers": tuple(routers), "terminals": tuple(terminals.values())}
            ),
        )
        manifest = staged._write_epoch(current.epoch + 1, current.epoch, all_parties)
        if manifest.signing is None:  # a store made before journal signing existed
            manifest = KeyStore(self.path, manifest)._write_signing_key()
        # the reservation stays, marked as of the old epoch: nothing is sealed under the new
        # keys yet. A missing or unreadable one starts again (the new keys are safe with it).
        try:
            kept = KeyStore(self.path, current).reservation()
        except KeyStoreError:
            kept = Reservation(frame=0, epoch=0)
        self._write_reservation(kept.model_copy(update={"epoch": min(kept.epoch, current.epoch)}))
        write_file(self.path / MANIFEST, manifest.model_dump_json(indent=1).encode(), 0o644)
        for epoch in current.epochs.keys() - manifest.epochs.keys():
            shutil.rmtree(self._epoch_dir(epoch), ignore_errors=True)  # pruned epochs
        self.manifest = manifest
        return self

    def _write_epoch(self, epoch: int, previous: int | None, renew_devices: bool) -> Manifest:
        """Write every private key of ``epoch`` into its directory (staged, then renamed);
        return the manifest that points at it. Devices keep their identity unless renewed."""
        for kind, names in (
            ("routers", self.manifest.routers),
            ("terminals", self.manifest.terminals),
        ):
            if len(names) > ROUTER.max_count + 1:
                raise KeyStoreError(f"{len(names)} {kind}: wire ids are 16-bit (at most 65536)")
        final = self._epoch_dir(epoch)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        public: dict[str, dict[str, str]] = {"routers": {}, "terminals": {}}
        controller = X25519PrivateKey.generate()
        write_file(tmp / "controller.key", _pem(controller), 0o600)
        for party in self.parties():
            old = (
                None if renew_devices or previous is None else self._maybe_private(previous, party)
            )
            key = old or X25519PrivateKey.generate()
            write_file(tmp / _file_name(party), _pem(key), 0o600)
            public[f"{party.kind}s"][party.name] = key.public_key().public_bytes_raw().hex()
        shutil.rmtree(final, ignore_errors=True)  # a leftover of a rotation that never committed
        os.replace(tmp, final)
        fsync_dir(self.path)
        entry = EpochEntry(
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            controller=controller.public_key().public_bytes_raw().hex(),
            routers=public["routers"],
            terminals=public["terminals"],
        )
        kept = sorted(self.manifest.epochs)[1 - KEEP_EPOCHS :]  # the new one makes KEEP_EPOCHS
        epochs = {e: self.manifest.epochs[e] for e in kept} | {epoch: entry}
        return self.manifest.model_copy(update={"epoch": epoch, "epochs": epochs})

    def _write_signing_key(self) -> Manifest:
        key = Ed25519PrivateKey.generate()
        write_file(self.path / SIGNING_KEY, _pem(key), 0o600)
        return self.manifest.model_copy(
            update={"signing": key.public_key().public_bytes_raw().hex()}
        )

    # --- reading ----------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.manifest.epoch

    def parties(self) -> list[Party]:
        routers = [Party("router", name, i) for i, name in enumerate(self.manifest.routers)]
        terms = [Party("terminal", t.id, i) for i, t in enumerate(self.manifest.terminals)]
        return routers + terms

    def party(self, kind: PartyKind, name: str) -> Party:
        for p in self.parties():
            if p.kind == kind and p.name == name:
                return p
        raise KeyStoreError(f"{self.path}: no {kind} '{name}' in the key store")

    def meter_router(self, terminal: str) -> str:
        return next(t.router for t in self.manifest.terminals if t.id == terminal)

    def public_key(self, epoch: int, party: Party | None) -> bytes:
        """Public key of ``party`` (``None``: the controller) in ``epoch``."""
        entry = self.manifest.epochs[epoch]
        text = entry.controller if party is None else getattr(entry, f"{party.kind}s")[party.name]
        return bytes.fromhex(text)

    def signing_public_key(self) -> bytes:
        """The Ed25519 public key that verifies the controller's journal."""
        if self.manifest.signing is None:
            raise KeyStoreError(
                f"{self.path}: no journal signing key; add one with: ppr keys rotate"
            )
        return bytes.fromhex(self.manifest.signing)

    def signing_key(self) -> Ed25519PrivateKey:
        """The controller's Ed25519 private key that signs the journal."""
        expected = self.signing_public_key()
        key = _load_private(self.path / SIGNING_KEY)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{self.path / SIGNING_KEY}: not an Ed25519 private key")
        if key.public_key().public_bytes_raw() != expected:
            raise KeyStoreError(
                f"{self.path / SIGNING_KEY}: does not match the public key in {MANIFEST}"
            )
        return key

    def sealing_keys(self, epoch: int | None = None) -> SealingKeys:
        """The controller's keys: outer per router, inner per terminal."""
        epoch = self.epoch if epoch is None else epoch
        controller = self._private(epoch, None)
        outer, inner = {}, {}
        for p in self.parties():
            peer = X25519PublicKey.from_public_bytes(self.public_key(epoch, p))
            if p.kind == "router":
                outer[p.name] = layer_key(
                    "outer", controller, peer, p, epoch, p.name, controller=True
                )
            else:
                rid = self.meter_router(p.name)
                inner[p.name] = layer_key("inner", controller, peer, p, epoch, rid, controller=True)
        return SealingKeys(epoch, outer, inner)

    def ring(self, kind: PartyKind, name: str) -> KeyRing:
        """A router's outer keys (``kind="router"``) or a meter's inner keys
        (``kind="terminal"``), for every epoch the store keeps: what firmware holds."""
        party = self.party(kind, name)
        layer: Layer = "outer" if kind == "router" else "inner"
        rid = name if kind == "router" else self.meter_router(name)
        keys = {}
        for epoch in self.manifest.epochs:
            own = self._private(epoch, party)
            ctl = X25519PublicKey.from_public_bytes(self.public_key(epoch, None))
            keys[epoch] = layer_key(layer, own, ctl, party, epoch, rid, controller=False)
        return KeyRing(party, rid, keys)

    def command_keys(self, epoch: int | None = None) -> dict[str, CommandKey]:
        """The controller's command keys of ``epoch`` (default: the current one), by router."""
        epoch = self.epoch if epoch is None else epoch
        controller = self._private(epoch, None)
        return {
            p.name: command_key(
                controller,
                X25519PublicKey.from_public_bytes(self.public_key(epoch, p)),
                p,
                epoch,
                controller=True,
            )
            for p in self.parties()
            if p.kind == "router"
        }

    def router_command_keys(self, name: str) -> dict[int, CommandKey]:
        """A router's command keys for every epoch the store keeps: what firmware holds."""
        party = self.party("router", name)
        return {
            epoch: command_key(
                self._private(epoch, party),
                X25519PublicKey.from_public_bytes(self.public_key(epoch, None)),
                party,
                epoch,
                controller=False,
            )
            for epoch in self.manifest.epochs
        }

    # --- files ------------------------------------------------------------------------

    def _epoch_dir(self, epoch: int) -> Path:
        return self.path / f"epoch-{epoch:04d}"

    def _key_path(self, epoch: int, party: Party | None) -> Path:
        return self._epoch_dir(epoch) / ("controller.key" if party is None else _file_name(party))

    def _check_permissions(self) -> None:
        # what guards the keys and the frame numbers: writable by others, it could be
        # swapped (public keys, a rolled-back reservation) as surely as a key could be read
        guards = [
            self.path,
            self.path / MANIFEST,
            self.path / SEALED_FRAMES,
            *(self._epoch_dir(e) for e in self.manifest.epochs),
        ]
        for path in guards:
            mode = _mode(path)
            if mode is not None and mode & 0o022:
                raise KeyPermissionError(
                    f"{path}: writable by group or others (mode {mode:04o}); whoever can write "
                    f"it can swap keys or roll back the frame numbers; fix with: chmod go-w {path}"
                )
        paths = [
            self._key_path(e, p) for e in self.manifest.epochs for p in [None, *self.parties()]
        ]
        paths.append(self.path / SIGNING_KEY)
        bad = [(p, m) for p in paths if (m := _mode(p)) is not None and m & 0o077]
        if bad:
            path, mode = bad[0]
            more = (
                f" ({len(bad)} key files; for all: chmod -R go-rwx {self.path})"
                if len(bad) > 1
                else ""
            )
            raise KeyPermissionError(
                f"{path}: private key is accessible by group or others (mode {mode:04o}); "
                f"fix with: chmod 600 {path}{more}"
            )

    def _maybe_private(self, epoch: int, party: Party) -> X25519PrivateKey | None:
        return self._private(epoch, party) if self._key_path(epoch, party).exists() else None

    def _private(self, epoch: int, party: Party | None) -> X25519PrivateKey:
        path = self._key_path(epoch, party)
        key = _load_private(path)
        if not isinstance(key, X25519PrivateKey):
            raise KeyStoreError(f"{path}: not an X25519 private key")
        if key.public_key().public_bytes_raw() != self.public_key(epoch, party):
            raise KeyStoreError(f"{path}: does not match the public key in {MANIFEST}")
        return key

    # --- frame numbers ----------------------------------------------------------------

    def reservation(self) -> Reservation:
        """The frame reservation (``sealed-frame``). Missing from a store that has one from
        ``init``: refused, since frames could then be sealed twice under the same keys."""
        path = self.path / SEALED_FRAMES
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise FrameReservationError(
                f"{path}: missing; it holds the highest frame number sealed under epoch "
                f"{self.epoch}'s keys, and without it a run could seal those frames again. "
                f"Start a new epoch: ppr keys rotate --keys {self.path} (then provision the "
                f"routers)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyStoreError(f"{path}: cannot read it: {exc}") from exc
        if text.isdigit():  # the first format: the number alone, reserved in this epoch
            return Reservation(frame=int(text), epoch=self.epoch)
        try:
            return Reservation.model_validate_json(text)
        except ValidationError:
            raise KeyStoreError(
                f"{path}: not a frame reservation; restore it from a backup, or start a new "
                f"epoch: ppr keys rotate --keys {self.path}"
            ) from None

    def last_sealed_frame(self) -> int:
        """The highest frame number reserved for sealing with this store's keys (0: none)."""
        return self.reservation().frame

    def check_frames(self, seen: Mapping[str, int]) -> None:
        """Refuse a reservation behind a frame that ``seen`` (who -> highest frame it saw:
        the routers, the journal) reports, when a frame was sealed under the current epoch
        (``FrameReservationError``: the reservation was deleted or rolled back, and the
        frames between may be sealed again under the same keys). No frame was sealed in
        this epoch yet (a new store, a rotation): the reservation moves up to them."""
        if not seen:
            return
        who, top = max(seen.items(), key=lambda item: item[1])
        with self._locked():
            r = self.reservation()
            if top <= r.frame:
                return
            if r.epoch >= self.epoch:
                frames = f"frame {top}" if top == r.frame + 1 else f"frames {r.frame + 1}..{top}"
                raise FrameReservationError(
                    f"{self.path / SEALED_FRAMES}: reserves frames up to {r.frame}, but {who} "
                    f"has seen frame {top}: the reservation was deleted or rolled back, and "
                    f"{frames} may be sealed again under epoch {self.epoch}'s keys. Start a "
                    f"new epoch: ppr keys rotate --keys {self.path} (then provision the "
                    f"routers)"
                )
            self._write_reservation(r.model_copy(update={"frame": top}))

    def reserve_frame(
        self, at_least: int, witness: Callable[[int], tuple[str, Mapping[str, Any]]] | None = None
    ) -> int:
        """Reserve the frame number to seal next: ``at_least``, or above every frame this
        store ever sealed. Header nonces are (epoch, frame, slot, index) under the
        store's keys, so two runs with their own journals (another ``--out``) must never
        seal the same frame number; durable before it returns. ``witness(frame)`` gives
        (journal id, the journal's signed head) to keep in the same write."""
        with self._locked():
            r = self.reservation()
            frame = max(at_least, r.frame + 1)
            journals = dict(r.journals)
            if witness is not None:
                journal, head = witness(frame)
                journals = _with_witness(journals, journal, head)
            self._write_reservation(Reservation(frame=frame, epoch=self.epoch, journals=journals))
        return frame

    def keep_witness(self, journal: str, head: Mapping[str, Any]) -> None:
        """Keep a journal's signed head (at the end of a run) with the reservation."""
        with self._locked():
            r = self.reservation()
            journals = _with_witness(dict(r.journals), journal, head)
            self._write_reservation(r.model_copy(update={"journals": journals}))

    def witness(self, journal: str) -> dict[str, Any] | None:
        """The last head kept for ``journal`` (None: none, or no reservation to hold it)."""
        try:
            return self.reservation().journals.get(journal)
        except KeyStoreError:
            return None

    def _write_reservation(self, r: Reservation) -> None:
        try:
            write_file(self.path / SEALED_FRAMES, (r.model_dump_json() + "\n").encode(), 0o644)
        except OSError as exc:
            raise KeyStoreError(f"{self.path}: cannot reserve frame {r.frame}: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _with_witness(
    journals: dict[str, dict[str, Any]], journal: str, head: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Journal heads with ``journal``'s replaced, the most recent KEEP_WITNESSES kept."""
    journals.pop(journal, None)
    journals[journal] = dict(head)
    return dict(list(journals.items())[-KEEP_WITNESSES:])


def _load_private(path: Path) -> object:
    """A PEM private key, refused when group or others may read the file."""
    try:
        data = read_owner_only(path)
    except TooOpenError as exc:
        raise KeyPermissionError(
            f"{path}: private key is accessible by group or others (mode {exc.mode:04o}); "
            f"fix with: chmod 600 {path}"
        ) from None
    except OSError as exc:
        raise KeyStoreError(f"{path}: cannot read private key: {exc.strerror}") from exc
    try:
        return serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise KeyStoreError(f"{path}: not a PEM private key") from exc


def _file_name(party: Party) -> str:
    return f"{party.kind}-{party.name}.key"


def _pem(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat(follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return None
