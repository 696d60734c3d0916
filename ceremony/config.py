"""The ceremony config: one strict TOML file that says everything the ceremony creates.

Root key holders review this one file, read its SHA-256 aloud, and then run
exactly it. So the loader is deliberately unforgiving:

* unknown keys are errors (a typo must not silently drop a setting);
* every date is an explicit TOML offset datetime; local datetimes, bare dates
  and the word "now" are refused, so the same file always describes the same
  certificates;
* PINs can never be written into it (``pin-value`` in a token URI is refused);
* every rule a later step depends on (algorithms per purpose, which key sits on
  which token, validity windows nested in the root's, thresholds) is checked
  here, before any token is touched.

Every failure is a :class:`~ceremony.errors.ConfigError` whose message starts
with the dotted path of the offending field, e.g.
``keys.root-ca.algorithm: expected ecdsa-p384 for a root-ca key, got 'ecdsa-p256'``.
See ``docs/ceremony.md`` for the reference of every key.
"""

from __future__ import annotations

import enum
import hashlib
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from ceremony.errors import ConfigError
from toolkit.signing._api import KeyAlgorithm, Scheme

__all__ = [
    "CERTIFICATE_KINDS",
    "CeremonyConfig",
    "CertificateKind",
    "CertificateSpec",
    "CustodianSpec",
    "KeySpec",
    "Purpose",
    "ServiceSpec",
    "SubjectName",
    "TokenSpec",
    "TrustedRootSpec",
    "TufRoleSpec",
    "TufSpec",
    "load_config",
    "parse_config",
]


class Purpose(enum.StrEnum):
    """What a key is for; decides its allowed algorithms and where it is used."""

    ROOT_CA = "root-ca"
    INTERMEDIATE_CA = "intermediate-ca"
    TSA = "tsa"
    TLOG = "tlog"
    CTLOG = "ctlog"
    TUF_ROOT = "tuf-root"
    TUF_ONLINE = "tuf-online"


CertificateKind = Literal["root", "intermediate", "tsa"]

#: The certificates a ceremony issues, in the order they are made.
CERTIFICATE_KINDS: Final[tuple[CertificateKind, ...]] = ("root", "intermediate", "tsa")

#: Purposes of which the config holds exactly one key.
SINGLE_PURPOSES: Final[tuple[Purpose, ...]] = (
    Purpose.ROOT_CA,
    Purpose.INTERMEDIATE_CA,
    Purpose.TSA,
    Purpose.TLOG,
    Purpose.CTLOG,
)

_TUF_ALGORITHMS: Final = (KeyAlgorithm.ED25519, KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384)

#: Algorithms allowed per purpose. The root is P-384 by the certificate
#: profile; CT log keys are P-256 because that is what CT (RFC 6962) clients
#: accept; transparency log keys are what Rekor verifiers accept; TUF keys are
#: what python-tuf verifies and custodian tokens commonly support.
ALLOWED_ALGORITHMS: Final[Mapping[Purpose, tuple[KeyAlgorithm, ...]]] = {
    Purpose.ROOT_CA: (KeyAlgorithm.ECDSA_P384,),
    Purpose.INTERMEDIATE_CA: tuple(KeyAlgorithm),
    Purpose.TSA: tuple(KeyAlgorithm),
    Purpose.TLOG: (KeyAlgorithm.ED25519, KeyAlgorithm.ECDSA_P256),
    Purpose.CTLOG: (KeyAlgorithm.ECDSA_P256,),
    Purpose.TUF_ROOT: _TUF_ALGORITHMS,
    Purpose.TUF_ONLINE: _TUF_ALGORITHMS,
}

_KIND_BY_NAME: Final[Mapping[str, CertificateKind]] = {kind: kind for kind in CERTIFICATE_KINDS}

#: The purpose the key of each certificate must have.
CERTIFICATE_PURPOSE: Final[Mapping[CertificateKind, Purpose]] = {
    "root": Purpose.ROOT_CA,
    "intermediate": Purpose.INTERMEDIATE_CA,
    "tsa": Purpose.TSA,
}

# Names of tokens and keys become file names, URI parts and, for tokens, the
# AIRSEAL_PIN_<NAME> environment variable (upper case, '-' -> '_'); lower-case
# letters, digits and '-' keep that mapping one-to-one.
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,63}")
_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_BARE_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BAD_PERCENT_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TOML_ERROR_RE: Final = re.compile(r"(?s)(.*) \(at line (\d+), column (\d+)\)")
_COUNTRY_RE: Final = re.compile(r"[A-Z]{2}")
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
# PKCS#11 CK_TOKEN_INFO holds the label in 32 bytes and the serial in 16
# characters, both blank-padded: longer values can never match a token.
_TOKEN_LABEL_MAX_BYTES: Final = 32
_TOKEN_SERIAL_MAX: Final = 16
_KEY_LABEL_MAX: Final = 128
# A ten-year bound keeps expiry arithmetic far from datetime overflow and
# catches a value typed in hours or seconds by mistake.
_EXPIRY_DAYS_MAX: Final = 3660
# A token URI names a token only: the key object is chosen by keys.*.label.
_OBJECT_ATTRIBUTES: Final = ("object", "id", "type")
_EXAMPLE_TIME: Final = "2026-11-01T00:00:00Z"

_TOP_FIELDS: Final = (
    "ceremony",
    "tokens",
    "keys",
    "custodians",
    "certificates",
    "trusted_root",
    "tuf",
)


@dataclass(frozen=True)
class TokenSpec:
    """A PKCS#11 token the ceremony expects to find.

    Attributes:
        name: The config's name for the token (``tokens.<name>``).
        uri: The RFC 7512 URI as written, naming the token (never a PIN).
        label: The token label (the URI's percent-decoded ``token=`` value).
        serial: The token serial number the run must find.
    """

    name: str
    uri: str
    label: str
    serial: str

    @property
    def pin_env(self) -> str:
        """The environment variable that may carry this token's PIN."""
        return _pin_env(self.name)


def _pin_env(token_name: str) -> str:
    # The same rule as toolkit.signing.pkcs11.resolve_pin: upper case, others -> '_'.
    return "AIRSEAL_PIN_" + re.sub(r"[^A-Z0-9]", "_", token_name.upper())


@dataclass(frozen=True)
class KeySpec:
    """A key the ceremony generates on a token.

    Attributes:
        name: The config's name for the key (``keys.<name>``).
        purpose: What the key is for.
        algorithm: The kind of key.
        scheme: The signing scheme (the algorithm's default unless configured).
        token: Name of the token (``tokens.<token>``) the key is generated on.
        label: The CKA_LABEL of the key objects on the token.
    """

    name: str
    purpose: Purpose
    algorithm: KeyAlgorithm
    scheme: Scheme
    token: str
    label: str


@dataclass(frozen=True)
class CustodianSpec:
    """A person who holds one TUF root key on their own token.

    Attributes:
        name: The custodian's name, as it appears in the plan and transcript.
        token: Name of the custodian's token.
        key: Name of the custodian's ``tuf-root`` key on that token.
    """

    name: str
    token: str
    key: str


@dataclass(frozen=True)
class SubjectName:
    """A certificate subject, as configured.

    Attributes:
        common_name: CN (required).
        organization: O.
        organizational_unit: OU.
        country: C, two upper-case letters (ISO 3166).
        state_or_province: ST.
        locality: L.
    """

    common_name: str
    organization: str | None = None
    organizational_unit: str | None = None
    country: str | None = None
    state_or_province: str | None = None
    locality: str | None = None

    def to_x509(self) -> x509.Name:
        """The X.509 name, most general attribute first (C, ST, L, O, OU, CN)."""
        parts = (
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.STATE_OR_PROVINCE_NAME, self.state_or_province),
            (NameOID.LOCALITY_NAME, self.locality),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit),
            (NameOID.COMMON_NAME, self.common_name),
        )
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts if value])

    def rfc4514(self) -> str:
        """The name as an RFC 4514 string (most specific attribute first)."""
        return self.to_x509().rfc4514_string()


@dataclass(frozen=True)
class CertificateSpec:
    """A certificate the ceremony issues.

    Attributes:
        kind: ``root`` (self-signed), ``intermediate`` or ``tsa`` (both signed by the root).
        key: Name of the subject key (``keys.<key>``).
        subject: The subject name.
        not_before: Start of validity (UTC, whole seconds).
        not_after: End of validity (UTC, whole seconds).
    """

    kind: CertificateKind
    key: str
    subject: SubjectName
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class ServiceSpec:
    """A service entry of the Sigstore trusted root.

    Attributes:
        url: Base URL of the service.
        valid_from: Start of the period the trusted root accepts it (UTC).
        valid_until: End of that period, or None when open-ended.
        key: Name of the service's key (tlog and ctlog only).
    """

    url: str
    valid_from: datetime
    valid_until: datetime | None
    key: str | None


@dataclass(frozen=True)
class TrustedRootSpec:
    """The services listed in ``trusted_root.json``."""

    ca: ServiceSpec
    tsa: ServiceSpec
    tlog: ServiceSpec
    ctlog: ServiceSpec


@dataclass(frozen=True)
class TufRoleSpec:
    """A TUF top-level role as written into ``1.root.json``.

    Attributes:
        threshold: Signatures required.
        keys: Names of the role's keys (for root: the custodians' keys, in custodian order).
        expires: Absolute expiry (root only).
        expiry_days: Lifetime of each signed version in days (targets, snapshot, timestamp).
    """

    threshold: int
    keys: tuple[str, ...]
    expires: datetime | None
    expiry_days: int | None


@dataclass(frozen=True)
class TufSpec:
    """The TUF root metadata the ceremony signs."""

    root: TufRoleSpec
    targets: TufRoleSpec
    snapshot: TufRoleSpec
    timestamp: TufRoleSpec
    consistent_snapshot: bool


@dataclass(frozen=True)
class CeremonyConfig:
    """A validated ceremony config.

    Attributes:
        id: The ceremony id.
        description: Free text for the reviewers, or None.
        pkcs11_module: Path of the PKCS#11 module, or None to use ``PKCS11_MODULE``.
        output_dir: Where ``run`` writes its outputs (absolute; relative paths in
            the file are taken from the config file's directory).
        tokens: Tokens by name, in file order.
        keys: Keys by name, in file order.
        custodians: The TUF root custodians, in file order.
        certificates: The certificates by kind, in issue order (root, intermediate, tsa).
        trusted_root: The trusted root services.
        tuf: The TUF roles.
        path: The config file.
        raw: The exact bytes that were validated.
        sha256: Hex SHA-256 of ``raw``: the hash the reviewers read aloud.
    """

    id: str
    description: str | None
    pkcs11_module: str | None
    output_dir: Path
    tokens: dict[str, TokenSpec]
    keys: dict[str, KeySpec]
    custodians: tuple[CustodianSpec, ...]
    certificates: dict[str, CertificateSpec]
    trusted_root: TrustedRootSpec
    tuf: TufSpec
    path: Path
    raw: bytes = field(repr=False)
    sha256: str

    def key_for(self, purpose: Purpose) -> KeySpec:
        """The one key with ``purpose``.

        Raises:
            LookupError: If there is not exactly one such key (only possible
                for tuf-root and tuf-online; use :meth:`keys_with` for those).
        """
        found = self.keys_with(purpose)
        if len(found) != 1:
            raise LookupError(f"{len(found)} keys have purpose {purpose}, not exactly one")
        return found[0]

    def keys_with(self, purpose: Purpose) -> list[KeySpec]:
        """All keys with ``purpose``, in file order."""
        return [key for key in self.keys.values() if key.purpose is purpose]

    def keys_on(self, token: str) -> list[KeySpec]:
        """All keys generated on the token named ``token``, in file order."""
        return [key for key in self.keys.values() if key.token == token]

    def token_of(self, key: str) -> TokenSpec:
        """The token the key named ``key`` is generated on."""
        return self.tokens[self.keys[key].token]


def load_config(path: Path) -> CeremonyConfig:
    """Read and validate a ceremony config file.

    Args:
        path: The TOML file.

    Returns:
        The validated config; its ``sha256`` is the hash of the file's bytes.

    Raises:
        ConfigError: If the file cannot be read or breaks any rule.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read ceremony config {path}: {exc.strerror or exc}") from None
    return parse_config(data, path=path)


def parse_config(data: bytes, *, path: Path) -> CeremonyConfig:
    """Validate the bytes of a ceremony config.

    Args:
        data: The file's bytes (hashed as they are).
        path: Where they came from; relative ``output_dir`` values are taken
            from its directory.

    Returns:
        The validated config.

    Raises:
        ConfigError: If the bytes are not UTF-8 TOML or break any rule.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not UTF-8 (bad byte at offset {exc.start})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_message(path, exc)) from None
    return _Parser(path).parse(document, data)


def _toml_error_message(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    found = _TOML_ERROR_RE.fullmatch(str(exc))
    if found is None:
        return f"{path.name}: invalid TOML: {exc}"
    reason, line, column = found.groups()
    return f"{path.name}: invalid TOML at line {line}, column {column}: {reason}"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    # Quote keys a TOML reader would have to quote, so the path can be pasted back.
    shown = key if _BARE_KEY_RE.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{path}.{shown}" if path else shown


def _type_name(value: object) -> str:
    # Order matters: bool is an int, and datetime is a date.
    for kind, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (datetime, "a datetime"),
        (date, "a date"),
        (time, "a time"),
        (list, "an array"),
        (dict, "a table"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _fail(path: str, message: str, *, hint: str | None = None) -> ConfigError:
    return ConfigError(message, path=path, hint=hint)


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


E = TypeVar("E", bound=enum.StrEnum)


class _Table:
    """One TOML table being read, with its dotted path.

    With ``fields`` given, keys outside it are reported before anything else
    is read, so a misspelt key is named as such rather than as a missing one.
    """

    def __init__(self, data: Mapping[str, Any], path: str, fields: Sequence[str] | None) -> None:
        self.data = data
        self.path = path
        if fields is not None:
            for key in data:
                if key not in fields:
                    raise _fail(
                        _join(path, key),
                        f"unknown key (expected one of: {', '.join(fields)})",
                    )

    def at(self, key: str | int) -> str:
        return _join(self.path, key)

    def _get(self, key: str, required: bool) -> Any:
        if key in self.data:
            return self.data[key]
        if required:
            raise _fail(self.at(key), "missing (required)")
        return None

    def string(self, key: str) -> str:
        value = self.opt_string(key, required=True)
        assert value is not None
        return value

    def opt_string(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        return _check_string(value, self.at(key))

    def integer(self, key: str) -> int:
        value = self._get(key, True)
        # TOML booleans are Python ints; "threshold = true" must not mean 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(self.at(key), f"expected an integer, got {_type_name(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise _fail(self.at(key), f"expected true or false, got {_type_name(value)}")
        return value

    def timestamp(self, key: str) -> datetime:
        value = self.opt_timestamp(key, required=True)
        assert value is not None
        return value

    def opt_timestamp(self, key: str, *, required: bool = False) -> datetime | None:
        value = self._get(key, required)
        if value is None:
            return None
        return _check_timestamp(value, self.at(key))

    def choice(self, key: str, enum_type: type[E]) -> E:
        value = self.string(key)
        try:
            return enum_type(value)
        except ValueError:
            options = ", ".join(member.value for member in enum_type)
            raise _fail(self.at(key), f"expected one of {options}; got {value!r}") from None

    def table(self, key: str, fields: Sequence[str] | None) -> _Table:
        value = self._get(key, True)
        if not isinstance(value, dict):
            raise _fail(self.at(key), f"expected a table, got {_type_name(value)}")
        return _Table(value, self.at(key), fields)

    def tables(self, fields: Sequence[str]) -> Iterator[tuple[str, _Table]]:
        """The sub-tables of a table of tables, in file order."""
        for name, value in self.data.items():
            if not isinstance(value, dict):
                raise _fail(self.at(name), f"expected a table, got {_type_name(value)}")
            yield name, _Table(value, self.at(name), fields)

    def array_of_tables(self, key: str, fields: Sequence[str]) -> list[_Table]:
        value = self._get(key, True)
        if not isinstance(value, list):
            raise _fail(
                self.at(key),
                f"expected an array of tables ([[{key}]]), got {_type_name(value)}",
            )
        tables = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise _fail(_join(self.at(key), index), f"expected a table, got {_type_name(item)}")
            tables.append(_Table(item, _join(self.at(key), index), fields))
        return tables

    def string_list(self, key: str) -> list[str]:
        value = self._get(key, True)
        if not isinstance(value, list):
            raise _fail(self.at(key), f"expected an array of strings, got {_type_name(value)}")
        return [_check_string(item, _join(self.at(key), i)) for i, item in enumerate(value)]


def _check_string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"expected a string, got {_type_name(value)}")
    if not value.strip():
        raise _fail(path, "must not be empty")
    # Config text is echoed into the plan, the transcript and terminals; a
    # newline or escape sequence there could forge lines a reviewer trusts.
    if _CONTROL_RE.search(value):
        raise _fail(path, "must not contain control characters (newlines, tabs, escapes)")
    if value != value.strip():
        raise _fail(path, "must not start or end with whitespace")
    return value


def _check_timestamp(value: object, path: str) -> datetime:
    example = f"such as {_EXAMPLE_TIME}"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _fail(path, f"local datetime without offset; give an explicit offset {example}")
        if value.microsecond:
            raise _fail(
                path, "fractional seconds are not allowed (certificates carry whole seconds)"
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        raise _fail(path, f"a date without time; give a datetime with an explicit offset {example}")
    if isinstance(value, time):
        raise _fail(path, f"a time without date; give a datetime with an explicit offset {example}")
    if isinstance(value, str):
        # Quoted dates and "now" would make the output depend on when it runs.
        raise _fail(
            path,
            f"expected a TOML datetime (unquoted, with an explicit offset) {example}; "
            f"got the string {value!r}",
        )
    raise _fail(path, f"expected a datetime {example}, got {_type_name(value)}")


def _check_name(name: str, path: str, what: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise _fail(
            path,
            f"{what} name must be lower-case letters, digits and '-', starting with a letter "
            "(at most 64 characters)",
        )


def _check_token_uri(uri: str, path: str, pin_env: str) -> tuple[str, str | None]:
    """Check a token URI; return its decoded ``token=`` label and ``serial=`` (if any).

    This is a deliberately small subset of RFC 7512: enough to be sure the URI
    names one token and carries no PIN. The full parser in
    ``toolkit.signing.pkcs11`` reads it again when the token is opened.
    """
    hint = "write the token as pkcs11:token=<label>"
    if not uri.startswith("pkcs11:"):
        raise _fail(path, "must be a pkcs11: URI (RFC 7512)", hint=hint)
    body = uri[len("pkcs11:") :]
    path_part, _, query = body.partition("?")
    parts = [p for p in path_part.split(";") if p] + [p for p in query.split("&") if p]
    # Refuse a PIN before anything else, so that no other message (which may
    # quote part of the URI) is ever built from a URI holding one.
    if any(part.partition("=")[0].lower() == "pin-value" for part in parts):
        raise _fail(
            path,
            "must not carry pin-value: PINs never go into the config",
            hint=f"enter the PIN at the prompt, set {pin_env}, or name a file with ?pin-source=",
        )
    if re.search(r"\s", uri):
        raise _fail(path, "must not contain whitespace (percent-encode it, e.g. %20)")
    if _BAD_PERCENT_RE.search(uri):
        raise _fail(path, "has a '%' not followed by two hex digits")
    attributes: dict[str, str] = {}
    for part in parts:
        name, eq, value = part.partition("=")
        if not eq or not name:
            raise _fail(path, f"malformed attribute {part!r} (expected name=value)")
        if name in attributes:
            raise _fail(path, f"attribute {name!r} appears twice")
        attributes[name] = value
    for name in _OBJECT_ATTRIBUTES:
        if name in attributes:
            raise _fail(
                path,
                f"a token URI names the token only; remove {name}= "
                "(each key is chosen by keys.<name>.label)",
            )
    if "token" not in attributes:
        raise _fail(path, "must name the token with token=<label>", hint=hint)
    try:
        label = unquote(attributes["token"], errors="strict")
    except UnicodeDecodeError:
        raise _fail(path, "token= is not percent-encoded UTF-8") from None
    if not label:
        raise _fail(path, "token= must not be empty")
    if len(label.encode("utf-8")) > _TOKEN_LABEL_MAX_BYTES:
        raise _fail(path, f"token label is longer than {_TOKEN_LABEL_MAX_BYTES} bytes")
    if label != label.strip() or _CONTROL_RE.search(label):
        raise _fail(
            path, "token label must not start or end with spaces or hold control characters"
        )
    serial = unquote(attributes["serial"]) if "serial" in attributes else None
    return label, serial


def _check_url(url: str, path: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check.
    except ValueError as exc:
        raise _fail(path, f"not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _fail(path, "must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _fail(path, "must not carry user name or password")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise _fail(path, "must be a base URL without query or fragment")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise _fail(
            path,
            f"http:// is only allowed for 127.0.0.1 and localhost; use https:// for "
            f"{parts.hostname}",
        )


def _check_window(
    table: _Table, start_key: str, end_key: str, start: datetime, end: datetime | None
) -> None:
    if end is not None and not start < end:
        raise _fail(table.at(end_key), f"{_time(end)} is not after {start_key} {_time(start)}")


class _Parser:
    """Turns the TOML document into a :class:`CeremonyConfig`, rule by rule."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tokens: dict[str, TokenSpec] = {}
        self.keys: dict[str, KeySpec] = {}
        # Where each key was defined, to point at the right line in messages.
        self.key_paths: dict[str, str] = {}

    def parse(self, document: dict[str, Any], raw: bytes) -> CeremonyConfig:
        top = _Table(document, "", _TOP_FIELDS)
        ceremony = top.table("ceremony", ("id", "description", "output_dir", "pkcs11_module"))
        ceremony_id = ceremony.string("id")
        if not _ID_RE.fullmatch(ceremony_id):
            raise _fail(
                ceremony.at("id"),
                "must be lower-case letters, digits, '.' and '-', starting with a letter or "
                "digit (at most 64 characters)",
            )
        description = ceremony.opt_string("description")
        output_dir = Path(ceremony.string("output_dir"))
        pkcs11_module = ceremony.opt_string("pkcs11_module")
        if pkcs11_module is not None and not Path(pkcs11_module).is_absolute():
            raise _fail(ceremony.at("pkcs11_module"), "must be an absolute path")

        self._tokens(top.table("tokens", None))
        self._keys(top.table("keys", None))
        custodians = self._custodians(top)
        certificates = self._certificates(top.table("certificates", None))
        trusted_root = self._trusted_root(top.table("trusted_root", ("ca", "tsa", "tlog", "ctlog")))
        tuf = self._tuf(
            top.table("tuf", ("consistent_snapshot", "root", "targets", "snapshot", "timestamp")),
            custodians,
        )
        self._every_key_used(custodians, tuf)
        return CeremonyConfig(
            id=ceremony_id,
            description=description,
            pkcs11_module=pkcs11_module,
            output_dir=(self.path.parent / output_dir).absolute(),
            tokens=self.tokens,
            keys=self.keys,
            custodians=custodians,
            certificates=certificates,
            trusted_root=trusted_root,
            tuf=tuf,
            path=self.path,
            raw=raw,
            sha256=hashlib.sha256(raw).hexdigest(),
        )

    def _tokens(self, tokens: _Table) -> None:
        by_label: dict[str, str] = {}
        by_serial: dict[str, str] = {}
        for name, table in tokens.tables(("uri", "serial")):
            _check_name(name, table.path, "token")
            uri = table.string("uri")
            label, uri_serial = _check_token_uri(uri, table.at("uri"), _pin_env(name))
            serial = table.string("serial")
            if len(serial) > _TOKEN_SERIAL_MAX or not serial.isascii() or " " in serial:
                raise _fail(
                    table.at("serial"),
                    f"a token serial is at most {_TOKEN_SERIAL_MAX} ASCII characters without "
                    "spaces",
                )
            if uri_serial is not None and uri_serial != serial:
                raise _fail(table.at("uri"), f"serial={uri_serial} differs from serial {serial!r}")
            # Two names for one token would let one person's token count twice.
            if label in by_label:
                raise _fail(
                    table.at("uri"),
                    f"token label {label!r} is already used by tokens.{by_label[label]}",
                )
            if serial in by_serial:
                raise _fail(
                    table.at("serial"),
                    f"serial {serial!r} is already used by tokens.{by_serial[serial]}",
                )
            by_label[label] = name
            by_serial[serial] = name
            self.tokens[name] = TokenSpec(name=name, uri=uri, label=label, serial=serial)
        if not self.tokens:
            raise _fail("tokens", "at least one token is required")

    def _keys(self, keys: _Table) -> None:
        labels: dict[tuple[str, str], str] = {}
        first_of: dict[Purpose, str] = {}
        for name, table in keys.tables(("purpose", "algorithm", "scheme", "token", "label")):
            _check_name(name, table.path, "key")
            purpose = table.choice("purpose", Purpose)
            algorithm = table.choice("algorithm", KeyAlgorithm)
            allowed = ALLOWED_ALGORITHMS[purpose]
            if algorithm not in allowed:
                raise _fail(
                    table.at("algorithm"),
                    f"expected {' or '.join(allowed)} for a {purpose} key, got {algorithm.value!r}",
                )
            scheme = Scheme.default_for(algorithm)
            if "scheme" in table.data:
                scheme = table.choice("scheme", Scheme)
                if scheme.key_algorithm is not algorithm:
                    raise _fail(
                        table.at("scheme"),
                        f"{scheme} signs with {scheme.key_algorithm} keys, not {algorithm}",
                    )
            token = table.string("token")
            if token not in self.tokens:
                raise _fail(
                    table.at("token"),
                    f"unknown token {token!r} (tokens: {', '.join(self.tokens)})",
                )
            label = table.string("label")
            if len(label) > _KEY_LABEL_MAX:
                raise _fail(table.at("label"), f"longer than {_KEY_LABEL_MAX} characters")
            if (token, label) in labels:
                raise _fail(
                    table.at("label"),
                    f"label {label!r} is already used on token {token!r} by "
                    f"keys.{labels[token, label]}",
                )
            labels[token, label] = name
            if purpose in SINGLE_PURPOSES and purpose in first_of:
                raise _fail(
                    table.at("purpose"),
                    f"a second {purpose} key (keys.{first_of[purpose]} is one already; "
                    "exactly one is allowed)",
                )
            first_of.setdefault(purpose, name)
            self.key_paths[name] = table.path
            self.keys[name] = KeySpec(
                name=name,
                purpose=purpose,
                algorithm=algorithm,
                scheme=scheme,
                token=token,
                label=label,
            )
        for purpose in SINGLE_PURPOSES:
            if purpose not in first_of:
                raise _fail("keys", f"no key with purpose {purpose} (exactly one is required)")

    def _key_ref(self, table: _Table, key: str, purposes: Sequence[Purpose]) -> KeySpec:
        """Resolve a key name read from ``table[key]`` and check its purpose."""
        name = table.string(key)
        return self._key_named(name, table.at(key), purposes)

    def _key_named(self, name: str, path: str, purposes: Sequence[Purpose]) -> KeySpec:
        spec = self.keys.get(name)
        if spec is None:
            raise _fail(path, f"unknown key {name!r} (keys: {', '.join(self.keys)})")
        if spec.purpose not in purposes:
            raise _fail(
                path,
                f"keys.{name} has purpose {spec.purpose}; expected {' or '.join(purposes)}",
            )
        return spec

    def _custodians(self, top: _Table) -> tuple[CustodianSpec, ...]:
        custodians: list[CustodianSpec] = []
        names: dict[str, str] = {}
        tokens: dict[str, str] = {}
        keys: dict[str, str] = {}
        for table in top.array_of_tables("custodians", ("name", "token", "key")):
            name = table.string("name")
            if name in names:
                raise _fail(table.at("name"), f"{name!r} is already {names[name]}")
            names[name] = table.path
            token = table.string("token")
            if token not in self.tokens:
                raise _fail(
                    table.at("token"),
                    f"unknown token {token!r} (tokens: {', '.join(self.tokens)})",
                )
            # A threshold of M custodians means M people: two custodians
            # sharing a token would let one person sign twice.
            if token in tokens:
                raise _fail(
                    table.at("token"),
                    f"token {token!r} is already held by {tokens[token]}; each custodian "
                    "holds their own token",
                )
            tokens[token] = table.path
            key = self._key_ref(table, "key", (Purpose.TUF_ROOT,))
            if key.name in keys:
                raise _fail(
                    table.at("key"), f"key {key.name!r} is already held by {keys[key.name]}"
                )
            keys[key.name] = table.path
            if key.token != token:
                raise _fail(
                    table.at("key"),
                    f"keys.{key.name} is on token {key.token!r}, not on this custodian's token "
                    f"{token!r}",
                )
            custodians.append(CustodianSpec(name=name, token=token, key=key.name))
        if not custodians:
            raise _fail("custodians", "at least one custodian is required")
        return tuple(custodians)

    def _certificates(self, certificates: _Table) -> dict[str, CertificateSpec]:
        found: dict[str, CertificateSpec] = {}
        for kind in certificates.data:
            if kind not in _KIND_BY_NAME:
                raise _fail(
                    certificates.at(kind),
                    f"unknown certificate (expected one of: {', '.join(CERTIFICATE_KINDS)})",
                )
        for kind, table in certificates.tables(("key", "subject", "not_before", "not_after")):
            cert_kind = _KIND_BY_NAME[kind]
            key = self._key_ref(table, "key", (CERTIFICATE_PURPOSE[cert_kind],))
            subject = _subject(
                table.table(
                    "subject",
                    (
                        "common_name",
                        "organization",
                        "organizational_unit",
                        "country",
                        "state_or_province",
                        "locality",
                    ),
                )
            )
            not_before = table.timestamp("not_before")
            not_after = table.timestamp("not_after")
            _check_window(table, "not_before", "not_after", not_before, not_after)
            found[kind] = CertificateSpec(
                kind=cert_kind,
                key=key.name,
                subject=subject,
                not_before=not_before,
                not_after=not_after,
            )
        for kind in CERTIFICATE_KINDS:
            if kind not in found:
                raise _fail(
                    certificates.at(kind),
                    "missing (the ceremony issues exactly root, intermediate and tsa)",
                )
        root = found["root"]
        subjects = {root.subject.to_x509(): "root"}
        for kind in ("intermediate", "tsa"):
            spec = found[kind]
            where = certificates.at(kind)
            # A certificate must not outlive, or predate, the root that signs it.
            if spec.not_before < root.not_before:
                raise _fail(
                    _join(where, "not_before"),
                    f"{_time(spec.not_before)} is before the root's not_before "
                    f"{_time(root.not_before)}",
                )
            if spec.not_after > root.not_after:
                raise _fail(
                    _join(where, "not_after"),
                    f"{_time(spec.not_after)} is after the root's not_after "
                    f"{_time(root.not_after)}",
                )
            # Chain building matches issuer to subject names: equal names would
            # make a leaf look self-issued or let it stand in for the root.
            name = spec.subject.to_x509()
            if name in subjects:
                raise _fail(
                    _join(where, "subject"),
                    f"same subject as certificates.{subjects[name]}; subjects must differ",
                )
            subjects[name] = kind
        return {kind: found[kind] for kind in CERTIFICATE_KINDS}

    def _trusted_root(self, table: _Table) -> TrustedRootSpec:
        def service(name: str, purpose: Purpose | None) -> ServiceSpec:
            fields: tuple[str, ...] = ("url", "valid_from", "valid_until")
            if purpose is not None:
                fields = ("url", "key", "valid_from", "valid_until")
            entry = table.table(name, fields)
            url = entry.string("url")
            _check_url(url, entry.at("url"))
            key = None
            if purpose is not None:
                key = self._key_ref(entry, "key", (purpose,)).name
            valid_from = entry.timestamp("valid_from")
            valid_until = entry.opt_timestamp("valid_until")
            _check_window(entry, "valid_from", "valid_until", valid_from, valid_until)
            return ServiceSpec(url=url, valid_from=valid_from, valid_until=valid_until, key=key)

        return TrustedRootSpec(
            ca=service("ca", None),
            tsa=service("tsa", None),
            tlog=service("tlog", Purpose.TLOG),
            ctlog=service("ctlog", Purpose.CTLOG),
        )

    def _tuf(self, table: _Table, custodians: tuple[CustodianSpec, ...]) -> TufSpec:
        consistent_snapshot = table.boolean("consistent_snapshot", True)
        root_table = table.table("root", ("threshold", "expires"))
        threshold = _threshold(root_table)
        if threshold > len(custodians):
            raise _fail(
                root_table.at("threshold"),
                f"{threshold} is more than the {len(custodians)} custodian(s); "
                "the root could never be signed",
            )
        root = TufRoleSpec(
            threshold=threshold,
            keys=tuple(c.key for c in custodians),
            expires=root_table.timestamp("expires"),
            expiry_days=None,
        )

        def online(name: str) -> TufRoleSpec:
            role = table.table(name, ("threshold", "keys", "expiry_days"))
            threshold = _threshold(role)
            names = role.string_list("keys")
            if not names:
                raise _fail(role.at("keys"), "at least one key is required")
            for index, key in enumerate(names):
                where = _join(role.at("keys"), index)
                self._key_named(key, where, (Purpose.TUF_ONLINE, Purpose.TUF_ROOT))
                if key in names[:index]:
                    raise _fail(where, f"key {key!r} is listed twice")
            if threshold > len(names):
                raise _fail(
                    role.at("threshold"),
                    f"{threshold} is more than the {len(names)} key(s) of the role",
                )
            days = role.integer("expiry_days")
            if not 1 <= days <= _EXPIRY_DAYS_MAX:
                raise _fail(role.at("expiry_days"), f"must be between 1 and {_EXPIRY_DAYS_MAX}")
            return TufRoleSpec(
                threshold=threshold, keys=tuple(names), expires=None, expiry_days=days
            )

        return TufSpec(
            root=root,
            targets=online("targets"),
            snapshot=online("snapshot"),
            timestamp=online("timestamp"),
            consistent_snapshot=consistent_snapshot,
        )

    def _every_key_used(self, custodians: tuple[CustodianSpec, ...], tuf: TufSpec) -> None:
        # Every key generated must have a job: an unused key on a token is
        # one more secret to guard, and usually a typo in a reference.
        held = {c.key for c in custodians}
        in_roles = {k for role in (tuf.targets, tuf.snapshot, tuf.timestamp) for k in role.keys}
        for name in self.tokens:
            if not any(key.token == name for key in self.keys.values()):
                raise _fail(
                    _join("tokens", name),
                    "holds no key (put a key on it or remove it, so nobody is asked for "
                    "its PIN for nothing)",
                )
        for name, spec in self.keys.items():
            if spec.purpose is Purpose.TUF_ROOT and name not in held:
                raise _fail(
                    self.key_paths[name],
                    "tuf-root key is not held by any custodian (name it in a [[custodians]] "
                    "entry or remove it)",
                )
            if spec.purpose is Purpose.TUF_ONLINE and name not in in_roles:
                raise _fail(
                    self.key_paths[name],
                    "tuf-online key is not used by tuf.targets, tuf.snapshot or tuf.timestamp",
                )


def _threshold(role: _Table) -> int:
    threshold = role.integer("threshold")
    if threshold < 1:
        raise _fail(role.at("threshold"), "must be at least 1")
    return threshold


_SUBJECT_LIMITS: Final = {
    # RFC 5280 upper bounds (ub-common-name and friends).
    "common_name": 64,
    "organization": 64,
    "organizational_unit": 64,
    "state_or_province": 128,
    "locality": 128,
}


def _subject(table: _Table) -> SubjectName:
    def read(key: str) -> str | None:
        value = table.string(key) if key == "common_name" else table.opt_string(key)
        limit = _SUBJECT_LIMITS[key]
        if value is not None and len(value) > limit:
            raise _fail(table.at(key), f"longer than {limit} characters (RFC 5280)")
        return value

    common_name = read("common_name")
    assert common_name is not None
    country = table.opt_string("country")
    if country is not None and not _COUNTRY_RE.fullmatch(country):
        raise _fail(table.at("country"), "must be two upper-case letters (ISO 3166), such as DE")
    return SubjectName(
        common_name=common_name,
        organization=read("organization"),
        organizational_unit=read("organizational_unit"),
        country=country,
        state_or_province=read("state_or_province"),
        locality=read("locality"),
    )
