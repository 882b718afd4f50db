"""SHA-512 crypt ("$6$", the scheme of glibc and libxcrypt): an account's password hash.

The manager hashes a lane's password itself and hands the account tools the
hash only, so no text from Consul is ever parsed by them. Pure Python (the
``crypt`` module is deprecated and gone in Python 3.13); the algorithm is
Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", default 5000 rounds.
"""

from __future__ import annotations

import hashlib
import re
import secrets

ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS = 5000
SALT_LENGTH = 16
HASH_PATTERN = re.compile(r"\$6\$[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}")
# Order in which the 64 digest bytes are written, three at a time.
_BYTE_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def new_salt() -> str:
    """Return a random salt of 16 characters from the crypt alphabet."""
    return "".join(secrets.choice(ALPHABET) for _ in range(SALT_LENGTH))


def sha512_crypt(password: str, salt: str | None = None) -> str:
    """Given a password (and optionally a salt), return its "$6$SALT$HASH" crypt string."""
    salt = (salt or new_salt())[:SALT_LENGTH]
    if not re.fullmatch(r"[./0-9A-Za-z]+", salt):
        raise ValueError("the salt must use the crypt alphabet")
    key, salt_bytes = password.encode("utf-8"), salt.encode("ascii")
    digest = _digest_a(key, salt_bytes)
    key_sequence = _repeat(hashlib.sha512(key * len(key)).digest(), len(key))
    salt_sequence = _repeat(hashlib.sha512(salt_bytes * (16 + digest[0])).digest(), len(salt_bytes))
    for round_number in range(ROUNDS):
        context = hashlib.sha512(key_sequence if round_number % 2 else digest)
        if round_number % 3:
            context.update(salt_sequence)
        if round_number % 7:
            context.update(key_sequence)
        context.update(digest if round_number % 2 else key_sequence)
        digest = context.digest()
    return f"$6${salt}${_encode(digest)}"


def _digest_a(key: bytes, salt: bytes) -> bytes:
    """Return the first digest of the algorithm (steps 1 to 12)."""
    alternate = hashlib.sha512(key + salt + key).digest()
    context = hashlib.sha512(key + salt)
    context.update(_repeat(alternate, len(key)))
    length = len(key)
    while length:
        context.update(alternate if length & 1 else key)
        length >>= 1
    return context.digest()


def _repeat(block: bytes, length: int) -> bytes:
    """Return block repeated and cut to length bytes."""
    return (block * (length // len(block) + 1))[:length]


def _encode(digest: bytes) -> str:
    """Return the 86-character crypt base64 of a 64-byte digest, in the scheme's byte order."""
    out = []
    for first, second, third in _BYTE_ORDER:
        out.append(_base64(digest[first] << 16 | digest[second] << 8 | digest[third], 4))
    out.append(_base64(digest[63], 2))
    return "".join(out)


def _base64(value: int, count: int) -> str:
    chars = []
    for _ in range(count):
        chars.append(ALPHABET[value & 0x3F])
        value >>= 6
    return "".join(chars)
