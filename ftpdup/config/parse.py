"""Turn the raw Consul key/value tree into a validated Config, collecting every problem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftpdup.config.literal import ValueDecodeError, decode_with_warnings
from ftpdup.config.model import FTP, HTTP, Config, Lane, Problem, Subscriber
from ftpdup.config.names import name_problem, unix_user_problem
from ftpdup.config.values import (
    MAX_DIRECTORY_LENGTH,
    MAX_LIFETIME_MINUTES,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    MAX_SECRET_LENGTH,
    MAX_SUFFIX_LENGTH,
    MAX_UID,
    MAX_USER_LENGTH,
    host_problem,
    printable,
    service_name_problem,
    shown_value,
    text_problem,
)

LANES_FOLDER = "incoming_directories"
MAX_CONNECTIONS = 16
# Key paths in problems are cut at this length (a key may be very long).
PATH_LIMIT = 300
LANE_KEYS = {"user", "password", "uid", "lifetime", "exclude", "replicas", "hosts"}
MAX_REPLICAS = 1000
SUBSCRIBER_KEYS = {
    "mode",
    "host",
    "port",
    "user",
    "password",
    "passwd",
    "directory",
    "tmp_suff",
    "consul_service",
    "service_consul",
    "verify_size",
    "tls",
    "tls_verify",
    "ca_file",
    "cert_file",
    "key_file",
    "atomic",
    "mkcol",
    "connections",
}


class Entry:
    """A raw Consul value and its ModifyIndex."""

    __slots__ = ("modify_index", "value")

    def __init__(self, value: bytes | None, modify_index: int = 0) -> None:
        self.value = value
        self.modify_index = modify_index


def parse_tree(entries: Mapping[str, Entry], prefix: str = "ftp_duplicator") -> Config:
    """Given Consul keys (full key -> Entry) under prefix, return the Config they describe.

    Keys look like ``PREFIX/incoming_directories/LANE/settings`` and
    ``PREFIX/incoming_directories/LANE/subscribers/SUB``. A lane or subscriber
    with a problem is left out and named in ``broken_lanes`` /
    ``broken_subscribers``; every problem is listed with its key path.
    """
    root = f"{prefix.strip('/')}/{LANES_FOLDER}/"
    grouped: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for key, entry in sorted(entries.items()):
        if not key.startswith(root) or key.endswith("/"):
            continue
        relative = key[len(root) :]
        lane_name, _, rest = relative.partition("/")
        lane = grouped.setdefault(lane_name, {"settings": None, "subscribers": {}})
        if rest == "settings":
            lane["settings"] = entry
        elif rest.startswith("subscribers/") and "/" not in rest[len("subscribers/") :]:
            lane["subscribers"][rest[len("subscribers/") :]] = entry
        else:
            problems.append(Problem(_short(key, prefix), "unknown key, ignored", warning=True))

    lanes = []
    broken_lanes = set()
    broken_subscribers = set()
    for lane_name, raw in grouped.items():
        lane, lane_problems, bad_subs = _parse_lane(lane_name, raw, prefix)
        problems.extend(lane_problems)
        broken_subscribers.update((lane_name, sub) for sub in bad_subs)
        if lane is None:
            broken_lanes.add(lane_name)
        else:
            lanes.append(lane)
    return Config(
        lanes=tuple(lanes),
        problems=tuple(problems),
        broken_lanes=frozenset(broken_lanes),
        broken_subscribers=frozenset(broken_subscribers),
    )


def _short(key: str, prefix: str) -> str:
    """Return key without the prefix, as shown in messages."""
    short = key[len(prefix.strip("/")) + 1 :] if key.startswith(prefix.strip("/") + "/") else key
    return printable(short, PATH_LIMIT)


def _parse_lane(
    name: str, raw: dict[str, Any], prefix: str
) -> tuple[Lane | None, list[Problem], list[str]]:
    """Return (lane or None, problems, names of unusable subscribers) for one lane."""
    path = printable(f"{LANES_FOLDER}/{name}", PATH_LIMIT)
    problems: list[Problem] = []
    problem = name_problem(name)
    if problem:
        return None, [Problem(path, f"lane {problem}")], []
    settings_entry: Entry | None = raw["settings"]
    if settings_entry is None:
        return None, [Problem(f"{path}/settings", "missing: the lane has no settings key")], []
    settings = _decode(settings_entry, f"{path}/settings", problems)
    lane_fields = _lane_fields(settings, f"{path}/settings", problems) if settings else None

    subscribers = []
    bad_subscribers = []
    for sub_name, entry in sorted(raw["subscribers"].items()):
        sub_path = printable(f"{path}/subscribers/{sub_name}", PATH_LIMIT)
        subscriber = _parse_subscriber(sub_name, entry, sub_path, problems)
        if subscriber is None:
            bad_subscribers.append(sub_name)
        else:
            subscribers.append(subscriber)
    if lane_fields is None:
        return None, problems, bad_subscribers
    lane = Lane(
        name=name,
        subscribers=tuple(subscribers),
        modify_index=settings_entry.modify_index,
        **lane_fields,
    )
    return lane, problems, bad_subscribers


def _decode(entry: Entry, path: str, problems: list[Problem]) -> dict[str, Any] | None:
    """Return the dictionary in entry, or None after recording why it cannot be read."""
    try:
        value, warnings = decode_with_warnings(entry.value)
    except ValueDecodeError as error:
        problems.append(Problem(path, str(error)))
        return None
    problems.extend(Problem(path, warning, warning=True) for warning in warnings)
    return value


def _lane_fields(
    settings: dict[str, Any], path: str, problems: list[Problem]
) -> dict[str, Any] | None:
    """Return the validated Lane fields from a settings dictionary, or None if any is bad."""
    errors: list[Problem] = []
    check = _Checker(settings, path, errors)
    user = check.string("user", required=True, max_length=MAX_USER_LENGTH)
    if user is not None and unix_user_problem(user):
        errors.append(Problem(path, f"'user': {unix_user_problem(user)}"))
    password = check.string("password", required=True, secret=True, numbers=True)
    uid = check.integer("uid", required=True, minimum=1, maximum=MAX_UID)
    lifetime = check.integer("lifetime", minimum=0, maximum=MAX_LIFETIME_MINUTES)
    if lifetime == 0:
        problems.append(Problem(path, "'lifetime' 0: every file left in the lane (excluded, "
                                      "or not taken) is set aside at each manager pass; "
                                      "ftp-duplicator deleted them", warning=True))  # fmt: skip
    exclude = check.string_list("exclude")
    replicas = None
    if str(settings.get("replicas", "all")).lower() != "all":
        replicas = check.integer("replicas", minimum=1, maximum=MAX_REPLICAS)
    hosts = check.string_list("hosts") or []
    for name in hosts:
        if name_problem(name):
            errors.append(Problem(path, f"'hosts': host ID {name_problem(name)}"))
    _warn_unknown(settings, LANE_KEYS, path, problems)
    problems.extend(check.warnings)
    problems.extend(errors)
    if errors:
        return None
    return {
        "user": user,
        "password": password,
        "uid": uid,
        "lifetime": lifetime,
        "exclude": tuple(exclude or ()),
        "replicas": replicas,
        "hosts": tuple(hosts),
    }


def _parse_subscriber(
    name: str, entry: Entry, path: str, problems: list[Problem]
) -> Subscriber | None:
    """Return the validated Subscriber stored in entry, or None after recording why not."""
    problem = name_problem(name)
    if problem:
        problems.append(Problem(path, f"subscriber {problem}"))
        return None
    value = _decode(entry, path, problems)
    if value is None:
        return None
    errors: list[Problem] = []
    check = _Checker(value, path, errors)
    mode = check.string("mode", required=True)
    mode = mode.lower() if mode is not None else None
    if mode is not None and mode not in (FTP, HTTP):
        errors.append(Problem(path, f'\'mode\' must be "ftp" or "http", not {mode!r}'))
    service = check.string("consul_service", alias="service_consul")
    if service is not None and service_name_problem(service):
        errors.append(Problem(path, f"'consul_service': {service_name_problem(service)}"))
    host = check.string("host")
    if host is not None and host_problem(host):
        errors.append(Problem(path, f"'host': {host_problem(host)}"))
    if service is None and host is None:
        errors.append(
            Problem(path, "'host' is required (or 'consul_service' for a Consul service)")
        )
    if service is not None and host is not None:
        errors.append(Problem(path, "give either 'host' or 'consul_service', not both"))
    port = check.integer("port", minimum=1, maximum=65535)
    if port is not None and service is not None:
        check.warn("'port' is ignored with 'consul_service': each instance's own port is used, "
                   "as ftp-duplicator did")  # fmt: skip
        port = None
    connections = check.integer("connections", minimum=1, maximum=MAX_CONNECTIONS)
    user = check.string("user", max_length=MAX_USER_LENGTH)
    if mode == HTTP and user is not None and ":" in user:
        errors.append(Problem(path, "'user' must not contain ':' with mode \"http\" (basic auth)"))
    password = check.string("password", alias="passwd", secret=True, numbers=True)
    # "": the login folder (FTP) or the server's root (HTTP), as "." is.
    directory = check.string("directory", max_length=MAX_DIRECTORY_LENGTH, empty=True) or "."
    # "": no temporary name, the file is written under its own name.
    tmp_suff = check.string("tmp_suff", max_length=MAX_SUFFIX_LENGTH, empty=True)
    if mode == FTP and (user is None or password is None):
        errors.append(Problem(path, "'user' and 'password' are required with mode \"ftp\""))
    if tmp_suff is not None and "/" in tmp_suff:
        errors.append(Problem(path, "'tmp_suff' must be a suffix without '/'"))
    flags = {key: bool(check.boolean(key)) for key in ("verify_size", "tls", "atomic", "mkcol")}
    flags["tls_verify"] = check.boolean("tls_verify") is not False
    files = {key: check.file_path(key) or "" for key in ("ca_file", "cert_file", "key_file")}
    if bool(files["cert_file"]) != bool(files["key_file"]):
        errors.append(Problem(path, "'cert_file' and 'key_file' go together"))
    if mode == FTP and (flags["atomic"] or flags["mkcol"]):
        errors.append(Problem(path, "'atomic' and 'mkcol' are for mode \"http\" (WebDAV)"))
    _warn_unknown(value, SUBSCRIBER_KEYS, path, problems)
    problems.extend(check.warnings)
    problems.extend(errors)
    if errors:
        return None
    if port is None and service is None:
        port = 21 if mode == FTP else 80
    return Subscriber(
        name=name,
        mode=mode,
        directory=directory,
        host=host,
        port=port,
        service=service,
        user=user,
        password=password,
        tmp_suff=tmp_suff if tmp_suff is not None else ".t",
        modify_index=entry.modify_index,
        connections=connections or 1,
        **flags,
        **files,
    )


def _warn_unknown(value: dict[str, Any], known: set[str], path: str, problems: list[Problem]):
    """Record a warning for each key of value that ftpdup does not know."""
    for key in sorted(set(value) - known):
        problems.append(Problem(path, f"unknown setting {key!r} ignored", warning=True))


class _Checker:
    """Read typed settings out of one dictionary, recording a Problem for each bad one."""

    def __init__(self, value: dict[str, Any], path: str, errors: list[Problem]) -> None:
        self.value = value
        self.path = path
        self.errors = errors
        self.warnings: list[Problem] = []

    def warn(self, message: str) -> None:
        """Record a warning: the value is used, with a meaning worth knowing."""
        self.warnings.append(Problem(self.path, message, warning=True))

    def _get(self, key: str, alias: str | None, required: bool) -> Any:
        """Return the value of key (or of its alias), None if absent; warn if both are given."""
        if key in self.value:
            if alias is not None and alias in self.value:
                self.warn(f"both {key!r} and {alias!r} are given: {key!r} is used")
            return self.value[key]
        if alias is not None and alias in self.value:
            return self.value[alias]
        if required:
            self.errors.append(Problem(self.path, f"{key!r} is required"))
        return None

    def string(
        self,
        key: str,
        required: bool = False,
        alias: str | None = None,
        max_length: int = MAX_SECRET_LENGTH,
        secret: bool = False,
        numbers: bool = False,
        empty: bool = False,
    ) -> str | None:
        """Return the safe string under key, or None (recording a problem if bad).

        Safe: at most max_length characters, valid Unicode, no control
        characters. The value of a secret is never quoted in a problem.
        numbers: an integer is taken as its digits (a password written
        123456 in a Python literal). empty: "" is a value.
        """
        found = self._get(key, alias, required)
        if found is None:
            return None
        if numbers and isinstance(found, int) and not isinstance(found, bool):
            found = str(found)
        if isinstance(found, str) and not found and empty:
            return found
        if not isinstance(found, str) or not found:
            self.errors.append(Problem(self.path, f"{key!r} must be a non-empty string"))
            return None
        problem = text_problem(found, max_length, secret)
        if problem:
            self.errors.append(Problem(self.path, f"{key!r} {problem}"))
            return None
        return found

    def integer(
        self, key: str, required: bool = False, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        """Return the integer under key (digits in a string are accepted), or None."""
        found = self._get(key, None, required)
        if found is None:
            return None
        text = found.strip() if isinstance(found, str) else ""
        if text.isascii() and text.isdigit() and len(text) <= 20:
            found = int(text)
        if isinstance(found, float) and found.is_integer() and abs(found) < 2**63:
            found = int(found)  # 60.0, as a Python literal or JSON may hold it
        if isinstance(found, bool) or not isinstance(found, int):
            self.errors.append(
                Problem(self.path, f"{key!r} must be an integer, not {shown_value(found)}")
            )
            return None
        if found < minimum or (maximum is not None and found > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
            self.errors.append(
                Problem(self.path, f"{key!r} must be {bounds}, not {shown_value(found)}")
            )
            return None
        return found

    def file_path(self, key: str) -> str | None:
        """Return the absolute path of a file on this host under key, or None."""
        found = self.string(key, max_length=MAX_DIRECTORY_LENGTH)
        if found is not None and (not found.startswith("/") or " " in found):
            self.errors.append(Problem(self.path, f"{key!r} must be an absolute path"))
            return None
        return found

    def boolean(self, key: str) -> bool | None:
        """Return the boolean under key (true/false, also as text), or None."""
        found = self._get(key, None, False)
        if found is None or isinstance(found, bool):
            return found
        if isinstance(found, str) and found.lower() in ("true", "false", "yes", "no"):
            return found.lower() in ("true", "yes")
        self.errors.append(Problem(self.path, f"{key!r} must be true or false"))
        return None

    def string_list(self, key: str) -> list[str] | None:
        """Return the list of strings under key (a single string is one pattern), or None."""
        found = self._get(key, None, False)
        if found is None:
            return None
        if isinstance(found, str):
            found = [found]
        if not isinstance(found, (list, tuple)) or not all(
            isinstance(item, str) and item for item in found
        ):
            self.errors.append(Problem(self.path, f"{key!r} must be a list of glob patterns"))
            return None
        if len(found) > MAX_PATTERNS:
            self.errors.append(Problem(self.path, f"{key!r} has more than {MAX_PATTERNS} patterns"))
            return None
        for pattern in found:
            problem = text_problem(pattern, MAX_PATTERN_LENGTH)
            if problem:
                self.errors.append(Problem(self.path, f"{key!r}: a pattern {problem}"))
                return None
        return list(found)
