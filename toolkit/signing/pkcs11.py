"""Keys on PKCS#11 tokens, through python-pkcs11.

The pieces, from the outside in:

* :class:`Pkcs11Module` -- a loaded PKCS#11 library (one per path per
  process), its tokens and their identities.
* :class:`Token` and :class:`TokenSession` -- a token, and the one logged-in
  session this process keeps per token.
* :func:`generate_key` -- a new key pair on a token, with the attributes a CA
  key needs (stored, sensitive, never extractable, sign/verify only).
* :class:`Pkcs11Signer` -- a token key behind the :class:`Signer` protocol,
  opened by RFC 7512 URI.

**One lock.** python-pkcs11 releases the GIL inside PKCS#11 calls and
initialises the module without OS locking, and SoftHSM then crashes when two
threads use sessions at the same time. Every PKCS#11 call in this module
therefore runs under one process-wide re-entrant lock, ``LOCK``; code that
calls python-pkcs11 directly on objects from here must hold it too.

**Module state.** A PKCS#11 module reads its configuration (SoftHSM:
``SOFTHSM2_CONF``) and its token list once, in ``C_Initialize``. Tokens created
on disk afterwards (``softhsm2-util --init-token``) stay invisible until
:meth:`Pkcs11Module.reinitialize`, which re-reads the configuration but
invalidates every session and key handle opened before it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, cast

import pkcs11 as p11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from pkcs11 import exceptions as p11_errors
from pkcs11.constants import Attribute, MechanismFlag, ObjectClass, TokenFlag
from pkcs11.mechanisms import MGF, KeyType, Mechanism

from toolkit.errors import HSMError, UsageError
from toolkit.signing._api import KeyAlgorithm, PrivateKey, PublicKey, Scheme, SignerBase
from toolkit.signing._crypto import RSA_PSS_SALT_LENGTH, check_scheme
from toolkit.signing._pin import module_path, resolve_pin
from toolkit.signing._proxy import (
    TokenEd25519PrivateKey,
    TokenEllipticCurvePrivateKey,
    TokenRSAPrivateKey,
)
from toolkit.signing._uri import Pkcs11Uri

__all__ = [
    "LOCK",
    "Pkcs11Module",
    "Pkcs11Signer",
    "Pkcs11Uri",
    "Token",
    "TokenInfo",
    "TokenSession",
    "generate_key",
    "key_attributes",
    "module_path",
    "resolve_pin",
]

#: The process-wide lock every PKCS#11 call runs under (see the module docs).
LOCK: Final = threading.RLock()

# PINs are never kept; a keyed hash of the PIN that opened a session is, so a
# later caller that presents a wrong PIN is refused even though the token is
# already logged in for this process. The key is random per process.
_PIN_TAG_KEY: Final = secrets.token_bytes(32)

_EC_PARAMS: Final[dict[KeyAlgorithm, bytes]] = {
    # DER OIDs: prime256v1, secp384r1, id-Ed25519.
    KeyAlgorithm.ECDSA_P256: bytes.fromhex("06082a8648ce3d030107"),
    KeyAlgorithm.ECDSA_P384: bytes.fromhex("06052b81040022"),
    KeyAlgorithm.ED25519: bytes.fromhex("06032b6570"),
}
_EC_ALGORITHMS: Final[dict[bytes, KeyAlgorithm]] = {
    **{params: algorithm for algorithm, params in _EC_PARAMS.items()},
    # Some tokens name Ed25519 by the PrintableString "edwards25519" (PKCS#11 3.0).
    b"\x13\x0cedwards25519": KeyAlgorithm.ED25519,
}
_CURVES: Final[dict[KeyAlgorithm, ec.EllipticCurve]] = {
    KeyAlgorithm.ECDSA_P256: ec.SECP256R1(),
    KeyAlgorithm.ECDSA_P384: ec.SECP384R1(),
}
_RSA_BITS: Final[dict[KeyAlgorithm, int]] = {
    KeyAlgorithm.RSA_3072: 3072,
    KeyAlgorithm.RSA_4096: 4096,
}
# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): PKCS#1 v1.5 signatures are
# built on the host over CKM_RSA_PKCS, so any token that does raw PKCS#1 works
# with any of these hashes.
_DIGEST_INFO: Final[dict[str, bytes]] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS_HASH: Final[dict[str, Mechanism]] = {
    "sha256": Mechanism.SHA256,
    "sha384": Mechanism.SHA384,
    "sha512": Mechanism.SHA512,
}
_PSS_MGF1: Final[dict[str, MGF]] = {
    "sha256": MGF.SHA256,
    "sha384": MGF.SHA384,
    "sha512": MGF.SHA512,
}
#: Private-key attributes :func:`key_attributes` reports, when the token has them.
_AUDITED: Final = (
    "SENSITIVE",
    "ALWAYS_SENSITIVE",
    "EXTRACTABLE",
    "NEVER_EXTRACTABLE",
    "LOCAL",
    "SIGN",
    "DECRYPT",
    "DERIVE",
    "UNWRAP",
    "MODIFIABLE",
    "COPYABLE",
    "TOKEN",
    "PRIVATE",
)
_WRONG_PIN: Final = (p11_errors.PinIncorrect, p11_errors.PinInvalid, p11_errors.PinLenRange)


def _describe(exc: BaseException) -> str:
    # python-pkcs11 exceptions mostly carry no message; the class name is the
    # PKCS#11 return code in words.
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _mechanism_name(mechanism: object) -> str:
    if isinstance(mechanism, Mechanism):
        return mechanism.name or f"0x{int(mechanism):08x}"
    return f"0x{int(cast(int, mechanism)):08x}"


@dataclass(frozen=True)
class TokenInfo:
    """A token's identity and capabilities (``C_GetTokenInfo``, ``C_GetMechanismList``).

    Attributes:
        label: The token label.
        serial: The serial number, as the token prints it.
        manufacturer: Manufacturer ID.
        model: Model name.
        hardware_version: ``major.minor``.
        firmware_version: ``major.minor``.
        slot_id: The slot the token is in (random per token for SoftHSM).
        flags: Names of the token flags that are set, sorted.
        mechanisms: Names of the mechanisms the slot offers, sorted.
    """

    label: str
    serial: str
    manufacturer: str
    model: str
    hardware_version: str
    firmware_version: str
    slot_id: int
    flags: tuple[str, ...]
    mechanisms: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, for the ceremony transcript."""
        return {
            "label": self.label,
            "serial": self.serial,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "hardware_version": self.hardware_version,
            "firmware_version": self.firmware_version,
            "slot_id": self.slot_id,
            "flags": list(self.flags),
            "mechanisms": list(self.mechanisms),
        }

    def describe(self) -> str:
        """``'label' (serial …)``."""
        return f"{self.label!r} (serial {self.serial})"


class Pkcs11Module:
    """A loaded PKCS#11 module. Get one with :meth:`load`; never construct directly."""

    _loaded: ClassVar[dict[str, Pkcs11Module]] = {}

    def __init__(self, path: str, lib: Any) -> None:
        self._path = path
        self._lib = lib
        self._generation = 0
        self._sessions: dict[str, TokenSession] = {}
        self._sha256: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pkcs11Module:
        """Load (once per process) the PKCS#11 module at ``path``.

        Raises:
            HSMError: The file is missing or is not a loadable PKCS#11 module,
                or the module failed to initialise (for SoftHSM, the message
                says what is wrong with ``SOFTHSM2_CONF``).
        """
        real = os.path.realpath(path)
        with LOCK:
            loaded = cls._loaded.get(real)
            if loaded is not None:
                return loaded
            if not Path(real).is_file():
                raise HSMError(
                    f"PKCS#11 module {str(path)!r} not found",
                    hint=_module_hint(str(path)),
                )
            try:
                lib = p11.lib(real)
            except p11_errors.PKCS11Error as exc:
                raise HSMError(
                    f"cannot initialise PKCS#11 module {str(path)!r}: {_describe(exc)}",
                    hint=_softhsm_diagnosis(real) or "check the module's own configuration",
                ) from None
            module = cls(real, lib)
            cls._loaded[real] = module
            return module

    @classmethod
    def loaded(cls, path: str | os.PathLike[str]) -> Pkcs11Module | None:
        """The module at ``path`` if this process has loaded it, else None."""
        with LOCK:
            return cls._loaded.get(os.path.realpath(path))

    @property
    def path(self) -> str:
        """The module's resolved file path."""
        return self._path

    @property
    def generation(self) -> int:
        """How often the module was re-initialised in this process."""
        return self._generation

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the module file, for the transcript."""
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(Path(self._path).read_bytes()).hexdigest()
        return self._sha256

    @property
    def info(self) -> dict[str, str]:
        """What the module reports about itself (``C_GetInfo``), JSON-ready.

        Keys: ``manufacturer``, ``description``, ``library_version`` and
        ``cryptoki_version`` (``major.minor``).
        """
        with LOCK:
            lib = self._lib
            return {
                "manufacturer": str(lib.manufacturer_id),
                "description": str(lib.library_description),
                "library_version": _version(lib.library_version),
                "cryptoki_version": _version(lib.cryptoki_version),
            }

    def reinitialize(self) -> None:
        """``C_Finalize`` + ``C_Initialize``: re-read the configuration and token list.

        Every session, signer and key handle from before stops working (their
        next use raises :class:`HSMError`); open them again.
        """
        with LOCK:
            self._sessions.clear()
            self._generation += 1
            try:
                self._lib.reinitialize()
            except p11_errors.PKCS11Error as exc:
                raise HSMError(
                    f"cannot re-initialise PKCS#11 module {self._path!r}: {_describe(exc)}",
                    hint=_softhsm_diagnosis(self._path),
                ) from None

    def tokens(self) -> list[TokenInfo]:
        """The initialised tokens present, in slot order."""
        return [token.info for token in self._scan()]

    def find_token(
        self,
        *,
        label: str | None = None,
        serial: str | None = None,
        manufacturer: str | None = None,
        model: str | None = None,
        slot_id: int | None = None,
    ) -> Token:
        """The one token matching every criterion given.

        Raises:
            HSMError: No token matches (the message names what was asked for
                and lists the tokens that are present), the token with that
                label has a different serial, or several tokens match.
        """
        present = self._scan()
        wanted = label if label is not None else serial
        listing = _listing(present)
        if label is not None:
            matches = [t for t in present if t.info.label == label]
            if not matches:
                raise HSMError(
                    f"no token labelled {label!r}; {listing}",
                    hint="connect the token, or check the label in the config",
                )
            if serial is not None:
                same = [t for t in matches if t.info.serial == serial]
                if not same:
                    serials = ", ".join(t.info.serial for t in matches)
                    raise HSMError(
                        f"token {label!r} has serial {serials}, expected {serial}",
                        hint="this is not the token the config names",
                    )
                matches = same
        elif serial is not None:
            matches = [t for t in present if t.info.serial == serial]
            if not matches:
                raise HSMError(f"no token with serial {serial}; {listing}")
        else:
            matches = present
            wanted = "(any)"
        for name, value in (("manufacturer", manufacturer), ("model", model)):
            if value is not None:
                kept = [t for t in matches if getattr(t.info, name) == value]
                if not kept:
                    raise HSMError(f"token {wanted!r} is not from {name} {value!r}; {listing}")
                matches = kept
        if slot_id is not None:
            matches = [t for t in matches if t.info.slot_id == slot_id]
            if not matches:
                raise HSMError(f"no token {wanted!r} in slot {slot_id}; {listing}")
        if not matches:
            raise HSMError(f"no initialised token is present in {self._path}")
        if len(matches) > 1:
            raise HSMError(
                f"{len(matches)} tokens match {wanted!r}: "
                + ", ".join(t.info.describe() for t in matches),
                hint="name the token by label and serial",
            )
        return matches[0]

    def _scan(self) -> list[Token]:
        tokens: list[Token] = []
        with LOCK:
            try:
                slots = self._lib.get_slots(token_present=True)
                for slot in slots:
                    try:
                        raw = slot.get_token()
                        if not raw.flags & TokenFlag.TOKEN_INITIALIZED:
                            continue
                        mechanisms = slot.get_mechanisms()
                    except (p11_errors.TokenNotPresent, p11_errors.TokenNotRecognised):
                        continue
                    tokens.append(Token(self, raw, _token_info(slot, raw, mechanisms)))
            except p11_errors.PKCS11Error as exc:
                raise HSMError(
                    f"cannot list the tokens of {self._path}: {_describe(exc)}"
                ) from None
        return tokens

    def _logged_in(self, token: Token) -> TokenSession | None:
        with LOCK:
            cached = self._sessions.get(_session_key(token))
            if cached is not None and cached.generation == self._generation:
                return cached
            return None

    def _login(self, token: Token, pin: str) -> TokenSession:
        tag = hmac.new(_PIN_TAG_KEY, pin.encode("utf-8"), hashlib.sha256).digest()
        key = _session_key(token)
        with LOCK:
            cached = self._sessions.get(key)
            if cached is not None and cached.generation == self._generation:
                if not hmac.compare_digest(cached.pin_tag, tag):
                    raise _wrong_pin(token.label)
                return cached
            raw = _open_session(token, pin)
            session = TokenSession(token, raw, self._generation, tag)
            self._sessions[key] = session
            return session

    def __repr__(self) -> str:
        return f"Pkcs11Module({self._path!r})"


def _session_key(token: Token) -> str:
    return f"{token.info.slot_id}:{token.info.serial}"


def _open_session(token: Token, pin: str) -> Any:
    try:
        try:
            return token.raw.open(rw=True, user_pin=pin)
        except p11_errors.TokenWriteProtected:
            return token.raw.open(user_pin=pin)
    except _WRONG_PIN:
        raise _wrong_pin(token.label) from None
    except p11_errors.PinLocked:
        raise HSMError(
            f"the user PIN of token {token.label!r} is locked",
            hint="the token's security officer must unlock it",
        ) from None
    except p11_errors.PinExpired:
        raise HSMError(f"the user PIN of token {token.label!r} has expired") from None
    except p11_errors.UserAlreadyLoggedIn:
        raise HSMError(
            f"token {token.label!r} is already logged in by other code in this process",
            hint="open keys through toolkit.signing only",
        ) from None
    except p11_errors.PKCS11Error as exc:
        raise HSMError(
            f"cannot open a session on token {token.label!r}: {_describe(exc)}"
        ) from None


def _wrong_pin(label: str) -> HSMError:
    return HSMError(
        f"wrong PIN for token {label!r}",
        hint="check the PIN; real tokens lock after a few wrong tries",
    )


def _listing(tokens: list[Token]) -> str:
    if not tokens:
        return "no initialised token is present"
    return "tokens present: " + ", ".join(t.info.describe() for t in tokens)


def _token_info(slot: Any, raw: Any, mechanisms: Any) -> TokenInfo:
    flags = TokenFlag(int(raw.flags))
    return TokenInfo(
        label=str(raw.label),
        serial=bytes(raw.serial).decode("ascii", "replace").strip(),
        manufacturer=str(raw.manufacturer_id),
        model=str(raw.model),
        hardware_version=_version(raw.hardware_version),
        firmware_version=_version(raw.firmware_version),
        slot_id=int(slot.slot_id),
        flags=tuple(sorted(f.name for f in TokenFlag if f.name and f in flags)),
        mechanisms=tuple(sorted(_mechanism_name(m) for m in mechanisms)),
    )


def _module_hint(path: str) -> str:
    if "softhsm" in path.lower():
        return "install SoftHSM (apt-get install softhsm2) or fix the module path"
    return "check the module path in the config or PKCS11_MODULE"


def _softhsm_diagnosis(path: str) -> str | None:
    """Say what is wrong with SoftHSM's configuration, which it reports only as GeneralError."""
    if "softhsm" not in path.lower():
        return None
    conf = os.environ.get("SOFTHSM2_CONF")
    if not conf:
        return "SOFTHSM2_CONF is not set, so SoftHSM uses the system config; set it"
    conf_path = Path(conf)
    if not conf_path.is_file():
        return f"SOFTHSM2_CONF names {conf!r}, which does not exist"
    try:
        text = conf_path.read_text()
    except OSError as exc:
        return f"cannot read SOFTHSM2_CONF {conf!r}: {exc.strerror}"
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == "directories.tokendir":
            tokendir = Path(value.strip())
            if not tokendir.is_dir():
                return f"the tokendir {str(tokendir)!r} named in {conf!r} does not exist"
            if not os.access(tokendir, os.R_OK | os.W_OK | os.X_OK):
                return f"the tokendir {str(tokendir)!r} is not writable by this user"
            return f"check {conf!r}"
    return f"{conf!r} sets no directories.tokendir"


class Token:
    """A token of a loaded module; get one with :meth:`Pkcs11Module.find_token`."""

    def __init__(self, module: Pkcs11Module, raw: Any, info: TokenInfo) -> None:
        self._module = module
        self._raw = raw
        self._info = info

    @property
    def module(self) -> Pkcs11Module:
        """The module the token belongs to."""
        return self._module

    @property
    def info(self) -> TokenInfo:
        """The token's identity and mechanisms, as read when it was found."""
        return self._info

    @property
    def label(self) -> str:
        """The token label."""
        return self._info.label

    @property
    def serial(self) -> str:
        """The token serial number."""
        return self._info.serial

    @property
    def raw(self) -> Any:
        """The python-pkcs11 token (hold :data:`LOCK` while using it)."""
        return self._raw

    def session(self, pin: str) -> TokenSession:
        """The logged-in read-write session this process keeps for the token.

        The first call logs in; later calls return the same session, after
        checking that the PIN is the one that logged in.

        Raises:
            HSMError: Wrong PIN (the message names the token, never the PIN),
                locked PIN, or the token refused the session.
        """
        return self._module._login(self, pin)

    def logged_in_session(self) -> TokenSession:
        """The session an earlier :meth:`session` call opened.

        Raises:
            HSMError: The process has not logged in to the token (or the
                module was re-initialised since).
        """
        session = self._module._logged_in(self)
        if session is None:
            raise HSMError(
                f"not logged in to token {self.label!r}",
                hint="log in first: Token.session(pin)",
            )
        return session

    def object_labels(self) -> list[str]:
        """Labels of all objects on the token, sorted (needs a logged-in session)."""
        return self.logged_in_session().object_labels()

    def __repr__(self) -> str:
        return f"Token({self._info.describe()})"


class TokenSession:
    """A logged-in session on a token. Get one with :meth:`Token.session`."""

    def __init__(self, token: Token, raw: Any, generation: int, pin_tag: bytes) -> None:
        self._token = token
        self._raw = raw
        self._generation = generation
        self.pin_tag: Final = pin_tag

    @property
    def token(self) -> Token:
        """The token."""
        return self._token

    @property
    def generation(self) -> int:
        """The module generation the session belongs to."""
        return self._generation

    @property
    def raw(self) -> Any:
        """The python-pkcs11 session (hold :data:`LOCK` while using it).

        Raises:
            HSMError: The module was re-initialised since the session opened.
        """
        self.check_live()
        return self._raw

    def check_live(self) -> None:
        """Raise :class:`HSMError` if the module was re-initialised since the session opened."""
        if self._generation != self._token.module.generation:
            raise HSMError(
                f"the session on token {self._token.label!r} ended: the PKCS#11 module "
                "was re-initialised",
                hint="open the token and its keys again",
            )

    def object_labels(self) -> list[str]:
        """Labels of the objects on the token this session can see, sorted."""
        with LOCK:
            labels = {str(obj[Attribute.LABEL]) for obj in self.raw.get_objects({})}
        return sorted(labels)

    def __repr__(self) -> str:
        return f"TokenSession({self._token.info.describe()})"


def generate_key(
    session: TokenSession | Token,
    algorithm: KeyAlgorithm,
    label: str,
    *,
    key_id: bytes | None = None,
    scheme: Scheme | None = None,
    pin: str | None = None,
    uri: Pkcs11Uri | str | None = None,
) -> Pkcs11Signer:
    """Generate a key pair on a token, fit for a CA, and return its signer.

    The private key is a token object (``store=True``), ``PRIVATE``,
    ``SENSITIVE``, not ``EXTRACTABLE``, not ``MODIFIABLE`` or ``COPYABLE`` (so
    nobody can later add usages), and can only sign: ``DECRYPT``, ``UNWRAP``
    and ``DERIVE`` are false. The public key can only verify.

    Args:
        session: A logged-in session, or a token (logged in before, or with ``pin``).
        algorithm: The kind of key.
        label: ``CKA_LABEL`` of both halves; must be new on the token.
        key_id: ``CKA_ID`` of both halves; 16 random bytes by default.
        scheme: The signer's scheme (default: :meth:`Scheme.default_for`).
        pin: The PIN, when ``session`` is a :class:`Token` not yet logged in to.
        uri: The token's URI; its ``pin-source`` and ``module-path`` are kept
            in the new key's :attr:`Pkcs11Signer.uri`, so that the key can be
            opened again the same way.

    Raises:
        HSMError: An object with that label already exists, or the token
            refused to generate the key.
        UsageError: Empty label, or a scheme for another kind of key.
    """
    algorithm = KeyAlgorithm(algorithm)
    scheme = check_scheme(algorithm, scheme)
    if isinstance(session, Token):
        session = session.logged_in_session() if pin is None else session.session(pin)
    if not label:
        raise UsageError("a key label must not be empty")
    token = session.token
    object_id = key_id if key_id is not None else secrets.token_bytes(16)
    capabilities = MechanismFlag.SIGN | MechanismFlag.VERIFY
    public_template: dict[Attribute, Any] = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: False,
        Attribute.MODIFIABLE: False,
    }
    private_template: dict[Attribute, Any] = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.MODIFIABLE: False,
        Attribute.COPYABLE: False,
    }
    key_length: int | None = None
    if algorithm in _RSA_BITS:
        key_type = KeyType.RSA
        key_length = _RSA_BITS[algorithm]
    else:
        key_type = KeyType.EC_EDWARDS if algorithm is KeyAlgorithm.ED25519 else KeyType.EC
        public_template[Attribute.EC_PARAMS] = _EC_PARAMS[algorithm]
    with LOCK:
        raw = session.raw
        try:
            clash = list(raw.get_objects({Attribute.LABEL: label}))
        except p11_errors.PKCS11Error as exc:
            raise HSMError(f"cannot search token {token.label!r}: {_describe(exc)}") from None
        if clash:
            raise HSMError(
                f"token {token.label!r} already holds an object labelled {label!r}",
                hint="key labels are unique per token: choose another label or a fresh token",
            )
        try:
            public, private = raw.generate_keypair(
                key_type,
                key_length,
                id=object_id,
                label=label,
                store=True,
                capabilities=capabilities,
                public_template=public_template,
                private_template=private_template,
            )
        except p11_errors.PKCS11Error as exc:
            raise HSMError(
                f"token {token.label!r} could not generate {algorithm.value} key {label!r}: "
                f"{_describe(exc)}"
            ) from None
        given = Pkcs11Uri.parse(uri) if isinstance(uri, str) else uri
        key_uri = Pkcs11Uri(
            token=token.label,
            serial=token.serial,
            object=label,
            id=object_id,
            type="private",
            pin_source=given.pin_source if given else None,
            module_path=given.module_path if given else None,
        )
        return Pkcs11Signer._from_objects(session, private, public, scheme, key_uri)


def key_attributes(signer: Pkcs11Signer) -> dict[str, bool]:
    """The security attributes of a token private key, as the token reports them.

    Keys: ``SENSITIVE``, ``ALWAYS_SENSITIVE``, ``EXTRACTABLE``,
    ``NEVER_EXTRACTABLE``, ``LOCAL``, ``SIGN``, ``DECRYPT``, ``DERIVE``,
    ``UNWRAP``, and ``MODIFIABLE``, ``COPYABLE``, ``TOKEN``, ``PRIVATE`` when
    the token lets them be read. An attribute the token does not have (for
    example ``DECRYPT`` on some EC keys) is left out.
    """
    result: dict[str, bool] = {}
    with LOCK:
        signer.session.check_live()
        for name in _AUDITED:
            try:
                value = signer.raw_private_key[Attribute[name]]
            except (p11_errors.AttributeTypeInvalid, p11_errors.AttributeSensitive):
                continue
            except p11_errors.PKCS11Error as exc:
                raise HSMError(
                    f"cannot read {name} of {signer.describe()}: {_describe(exc)}"
                ) from None
            result[name] = bool(value)
    return result


class Pkcs11Signer(SignerBase):
    """A :class:`~toolkit.signing.Signer` whose private key is on a PKCS#11 token.

    Open one with :meth:`open` or create the key with :func:`generate_key`.

    * ECDSA: the message is hashed on the host (SoftHSM has no
      ``CKM_ECDSA_SHA*``), the token signs the digest with ``CKM_ECDSA`` and
      its raw ``r‖s`` is re-encoded as DER.
    * Ed25519: ``CKM_EDDSA`` over the whole message.
    * RSA: PKCS#1 v1.5 as a host-built DigestInfo over ``CKM_RSA_PKCS``; PSS
      with ``CKM_RSA_PKCS_PSS`` and explicit parameters (SHA-256, MGF1-SHA-256,
      32-byte salt), never the mechanism's SHA-1 defaults.

    Every signature is verified with the public key before it is returned.
    """

    def __init__(
        self,
        *,
        session: TokenSession,
        private: Any,
        public_key: PublicKey,
        algorithm: KeyAlgorithm,
        scheme: Scheme,
        label: str,
        object_id: bytes,
        uri: Pkcs11Uri,
    ) -> None:
        super().__init__(algorithm, check_scheme(algorithm, scheme), public_key)
        self._session = session
        self._private = private
        self._label = label
        self._object_id = object_id
        self._uri = uri
        self._proxy: PrivateKey | None = None
        # Built once: sign() runs thousands of times a second for a log or a TSA.
        hash_algorithm = self._scheme.hash
        self._hash_algorithm = hash_algorithm
        self._ecdsa_check: ec.ECDSA | None = None
        if isinstance(public_key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            self._ecdsa_check = ec.ECDSA(Prehashed(hash_algorithm))
            self._hashlib = getattr(hashlib, hash_algorithm.name)

    @classmethod
    def open(
        cls,
        uri: Pkcs11Uri | str,
        *,
        module: str | None = None,
        pin: str | None = None,
        token_name: str | None = None,
        scheme: Scheme | None = None,
    ) -> Pkcs11Signer:
        """Open the token key a ``pkcs11:`` URI names.

        Args:
            uri: Names the token (``token``, ``serial``…) and the key (``object``
                and/or ``id``; ``type`` absent or ``private``).
            module: The PKCS#11 module; default the URI's ``module-path``, then
                ``$PKCS11_MODULE``.
            pin: The user PIN; default :func:`resolve_pin`.
            token_name: The config's name for the token (for ``AIRSEAL_PIN_<NAME>``).
            scheme: The signing scheme (default for the key's algorithm).

        Raises:
            FormatError: The URI is malformed.
            UsageError: The URI names no key, or a non-private object.
            HSMError: Module, token or key missing, wrong PIN, or a key of a
                kind airseal does not use.
        """
        if isinstance(uri, str):
            uri = Pkcs11Uri.parse(uri)
        if uri.type not in (None, "private"):
            raise UsageError(f"the URI names a {uri.type} object; a signer needs a private key")
        if uri.object is None and uri.id is None:
            raise UsageError(
                "the URI names no key", hint="add object=<key label> to the PKCS#11 URI"
            )
        loaded = Pkcs11Module.load(module_path(module or uri.module_path))
        token = loaded.find_token(
            label=uri.token,
            serial=uri.serial,
            manufacturer=uri.manufacturer,
            model=uri.model,
            slot_id=uri.slot_id,
        )
        if pin is None:
            pin = resolve_pin(uri.replace(token=token.label), token_name=token_name)
        session = token.session(pin)
        template: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
        if uri.object is not None:
            template[Attribute.LABEL] = uri.object
        if uri.id is not None:
            template[Attribute.ID] = uri.id
        wanted = _key_words(uri.object, uri.id)
        with LOCK:
            raw = session.raw
            try:
                found = list(raw.get_objects(template))
                if not found:
                    labels = sorted(
                        str(o[Attribute.LABEL])
                        for o in raw.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
                    )
                    raise HSMError(
                        f"no private key {wanted} on token {token.label!r}",
                        hint=(
                            "private keys on the token: " + ", ".join(map(repr, labels))
                            if labels
                            else "the token holds no private keys"
                        ),
                    )
                if len(found) > 1:
                    raise HSMError(
                        f"{len(found)} private keys {wanted} on token {token.label!r}",
                        hint="add id=… to the URI to pick one",
                    )
                private = found[0]
                label = str(private[Attribute.LABEL])
                object_id = bytes(private[Attribute.ID])
                publics = list(
                    raw.get_objects(
                        {
                            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                            Attribute.LABEL: label,
                            Attribute.ID: object_id,
                        }
                    )
                )
            except p11_errors.PKCS11Error as exc:
                raise HSMError(
                    f"cannot look up key {wanted} on token {token.label!r}: {_describe(exc)}"
                ) from None
            key_uri = uri.replace(
                token=token.label,
                serial=token.serial,
                slot_id=None,
                object=label or None,
                id=object_id or None,
                type="private",
            )
            return cls._from_objects(
                session, private, publics[0] if len(publics) == 1 else None, scheme, key_uri
            )

    @classmethod
    def _from_objects(
        cls,
        session: TokenSession,
        private: Any,
        public: Any,
        scheme: Scheme | None,
        uri: Pkcs11Uri,
    ) -> Pkcs11Signer:
        label = uri.object or ""
        where = f"key {label!r} on token {session.token.label!r}"
        try:
            algorithm, public_key = _public_key(private, public, where)
            object_id = bytes(private[Attribute.ID])
        except p11_errors.PKCS11Error as exc:
            raise HSMError(f"cannot read {where}: {_describe(exc)}") from None
        return cls(
            session=session,
            private=private,
            public_key=public_key,
            algorithm=algorithm,
            scheme=check_scheme(algorithm, scheme),
            label=label,
            object_id=object_id,
            uri=uri,
        )

    # -- the Signer protocol (scheme, public_key and key_id: SignerBase) -----------

    def sign(self, data: bytes) -> bytes:
        """Sign the whole message ``data`` on the token and check the signature.

        Raises:
            HSMError: The token failed, or returned a signature that does not
                verify with the public key.
        """
        if self._ecdsa_check is not None:
            return self._finish_ecdsa(self._hashlib(data).digest(), self._ecdsa_check)
        if self._algorithm is KeyAlgorithm.ED25519:
            return self.sign_eddsa(data)
        hash_algorithm = self._hash_algorithm
        assert hash_algorithm is not None
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(hash_algorithm), RSA_PSS_SALT_LENGTH)
            if self._scheme.pss
            else padding.PKCS1v15()
        )
        return self.sign_rsa(data, pad, hash_algorithm)

    def private_key(self) -> PrivateKey:
        """A cryptography private-key proxy for the certificate, CSR and CRL builders."""
        if self._proxy is None:
            public = self._public_key
            if isinstance(public, ec.EllipticCurvePublicKey):
                self._proxy = TokenEllipticCurvePrivateKey(self, public)
            elif isinstance(public, ed25519.Ed25519PublicKey):
                self._proxy = TokenEd25519PrivateKey(self, public)
            else:
                self._proxy = TokenRSAPrivateKey(self, public)
        return self._proxy

    # -- more about the key (algorithm: SignerBase) --------------------------------

    @property
    def label(self) -> str:
        """``CKA_LABEL`` of the private key."""
        return self._label

    @property
    def object_id(self) -> bytes:
        """``CKA_ID`` of the private key."""
        return self._object_id

    @property
    def uri(self) -> Pkcs11Uri:
        """The key's canonical URI: token label and serial, key label and id, no PIN."""
        return self._uri

    @property
    def session(self) -> TokenSession:
        """The session the key is used through."""
        return self._session

    @property
    def token_info(self) -> TokenInfo:
        """The token's identity."""
        return self._session.token.info

    @property
    def raw_private_key(self) -> Any:
        """The python-pkcs11 private key object (hold :data:`LOCK` while using it)."""
        return self._private

    def describe(self) -> str:
        """``key 'label' on token 'token'``, for messages."""
        return f"key {self._label!r} on token {self._session.token.label!r}"

    def __repr__(self) -> str:
        return f"Pkcs11Signer({str(self._uri)!r}, {self._scheme.value})"

    # -- signing primitives (also used by the private-key proxies) -----------------

    def sign_ecdsa(self, data: bytes, algorithm: hashes.HashAlgorithm | Prehashed) -> bytes:
        """ECDSA over ``data`` hashed with ``algorithm`` (or a digest, with ``Prehashed``)."""
        if not isinstance(self._public_key, ec.EllipticCurvePublicKey):
            raise UsageError(f"{self.describe()} is not an ECDSA key")
        digest, prehashed = _digest(data, algorithm)
        return self._finish_ecdsa(digest, ec.ECDSA(prehashed))

    def _finish_ecdsa(self, digest: bytes, check: ec.ECDSA) -> bytes:
        raw = self._token_sign(digest, Mechanism.ECDSA)
        public = self._public_key
        assert isinstance(public, ec.EllipticCurvePublicKey)
        half = len(raw) // 2
        if len(raw) % 2 or half != (public.key_size + 7) // 8:
            raise HSMError(f"{self.describe()}: the token returned a malformed ECDSA signature")
        # PKCS#11 returns r||s; X.509, TUF and Sigstore want DER Ecdsa-Sig-Value.
        signature = encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )
        try:
            public.verify(signature, digest, check)
        except InvalidSignature:
            raise self._bad_signature() from None
        return signature

    def sign_eddsa(self, data: bytes) -> bytes:
        """Pure Ed25519 over ``data``."""
        public = self._public_key
        if not isinstance(public, ed25519.Ed25519PublicKey):
            raise UsageError(f"{self.describe()} is not an Ed25519 key")
        signature = self._token_sign(data, Mechanism.EDDSA)
        try:
            public.verify(signature, data)
        except InvalidSignature:
            raise self._bad_signature() from None
        return signature

    def sign_rsa(
        self,
        data: bytes,
        padding_: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | Prehashed,
    ) -> bytes:
        """RSA PKCS#1 v1.5 or PSS over ``data`` (or a digest, with ``Prehashed``)."""
        public = self._public_key
        if not isinstance(public, rsa.RSAPublicKey):
            raise UsageError(f"{self.describe()} is not an RSA key")
        digest, prehashed = _digest(data, algorithm)
        hash_name = _hash_of(prehashed).name
        if isinstance(padding_, padding.PKCS1v15):
            prefix = _DIGEST_INFO.get(hash_name)
            if prefix is None:
                raise UsageError(f"RSA signing with {hash_name} is not supported")
            signature = self._token_sign(prefix + digest, Mechanism.RSA_PKCS)
        elif isinstance(padding_, padding.PSS):
            mechanism = _PSS_HASH.get(hash_name)
            mgf = padding_.mgf
            mgf1 = _PSS_MGF1.get(mgf._algorithm.name) if isinstance(mgf, padding.MGF1) else None
            # SoftHSM (like many tokens) refuses an MGF1 hash other than the
            # message hash, and RFC 4055 recommends they match: require it.
            if mechanism is None or mgf1 is not _PSS_MGF1[hash_name]:
                raise UsageError(
                    "RSA-PSS with a token key needs SHA-256, SHA-384 or SHA-512 "
                    "and MGF1 with the same hash"
                )
            salt = _pss_salt_length(padding_, public, _hash_of(prehashed))
            signature = self._token_sign(digest, Mechanism.RSA_PKCS_PSS, (mechanism, mgf1, salt))
        else:
            raise UsageError(f"unsupported RSA padding {padding_.name}")
        try:
            public.verify(signature, digest, padding_, prehashed)
        except InvalidSignature:
            raise self._bad_signature() from None
        return signature

    def _token_sign(self, data: bytes, mechanism: Mechanism, param: Any = None) -> bytes:
        with LOCK:
            self._session.check_live()
            try:
                return bytes(self._private.sign(data, mechanism=mechanism, mechanism_param=param))
            except p11_errors.PKCS11Error as exc:
                raise HSMError(f"{self.describe()} failed to sign: {_describe(exc)}") from None

    def _bad_signature(self) -> HSMError:
        return HSMError(
            f"{self.describe()}: the token returned a signature that does not verify",
            hint="do not use this token until the fault is understood",
        )


def _key_words(label: str | None, object_id: bytes | None) -> str:
    parts = []
    if label is not None:
        parts.append(f"labelled {label!r}")
    if object_id is not None:
        parts.append(f"with id {object_id.hex()}")
    return " and ".join(parts)


def _digest(data: bytes, algorithm: hashes.HashAlgorithm | Prehashed) -> tuple[bytes, Prehashed]:
    if isinstance(algorithm, Prehashed):
        if len(data) != algorithm.digest_size:
            raise UsageError(
                f"a prehashed message must be {algorithm.digest_size} bytes, not {len(data)}"
            )
        return data, algorithm
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize(), Prehashed(algorithm)


def _hash_of(prehashed: Prehashed) -> hashes.HashAlgorithm:
    # cryptography keeps the hash of a Prehashed only as a private attribute.
    return prehashed._algorithm


def _pss_salt_length(
    pad: padding.PSS, public: rsa.RSAPublicKey, hash_algorithm: hashes.HashAlgorithm
) -> int:
    salt = pad._salt_length
    if isinstance(salt, int):
        return salt
    if salt is padding.PSS.DIGEST_LENGTH:
        return hash_algorithm.digest_size
    if salt is padding.PSS.MAX_LENGTH:
        return padding.calculate_max_pss_salt_length(public, hash_algorithm)
    raise UsageError("PSS salt length AUTO only works for verification")


def _public_key(private: Any, public: Any, where: str) -> tuple[KeyAlgorithm, PublicKey]:
    key_type = private.key_type
    if key_type is KeyType.RSA:
        source = public if public is not None else private
        # python-pkcs11 hands big integers over as big-endian bytes.
        modulus = int.from_bytes(bytes(source[Attribute.MODULUS]), "big")
        exponent = int.from_bytes(bytes(source[Attribute.PUBLIC_EXPONENT]), "big")
        rsa_key = rsa.RSAPublicNumbers(exponent, modulus).public_key()
        for algorithm, bits in _RSA_BITS.items():
            if rsa_key.key_size == bits:
                return algorithm, rsa_key
        raise HSMError(f"{where} is RSA-{rsa_key.key_size}; airseal uses RSA-3072 or RSA-4096")
    if key_type not in (KeyType.EC, KeyType.EC_EDWARDS):
        raise HSMError(f"{where} has key type {key_type!r}, which airseal does not use")
    if public is None:
        raise HSMError(f"{where} has no public key object with the same label and id")
    params = bytes(public[Attribute.EC_PARAMS])
    ec_algorithm = _EC_ALGORITHMS.get(params)
    if ec_algorithm is None:
        raise HSMError(f"{where} is on a curve airseal does not use (EC_PARAMS {params.hex()})")
    point = bytes(public[Attribute.EC_POINT])
    if ec_algorithm is KeyAlgorithm.ED25519:
        return ec_algorithm, ed25519.Ed25519PublicKey.from_public_bytes(
            _unwrap_point(point, 32, where)
        )
    curve = _CURVES[ec_algorithm]
    size = 1 + 2 * ((curve.key_size + 7) // 8)
    try:
        return ec_algorithm, ec.EllipticCurvePublicKey.from_encoded_point(
            curve, _unwrap_point(point, size, where)
        )
    except ValueError:
        raise HSMError(f"{where} has an invalid EC point") from None


def _unwrap_point(point: bytes, size: int, where: str) -> bytes:
    """``CKA_EC_POINT`` is a DER OCTET STRING on SoftHSM, the bare point on some tokens."""
    if len(point) == size:
        return point
    if len(point) >= size + 2 and point[0] == 0x04:
        if point[1] == size and len(point) == size + 2:
            return point[2:]
        if point[1] == 0x81 and point[2] == size and len(point) == size + 3:
            return point[3:]
    raise HSMError(f"{where} has a malformed EC_POINT ({len(point)} bytes)")
