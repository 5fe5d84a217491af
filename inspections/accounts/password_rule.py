"""The one rule for a new password: joining from an invite, resetting, changing, the CLI.

It follows NIST SP 800-63B-4 (2025) and the NCSC's advice:

- Length is what makes a password hard to guess. At least 15 characters: NIST's minimum
  for a password that is the only factor, as ours is (there is no second factor here).
  Three or four random words, the NCSC's advice, get there easily and are easy to type on
  a phone. Up to 256: NIST asks for at least 64; argon2 takes any length at the same cost.
- No composition rules (no "a digit and a symbol"): they make passwords harder to remember
  and barely harder to guess. Spaces and any characters are allowed.
- Refuse what attackers try first: passwords from a list of common ones (SecLists' top
  million, see common_passwords/README.md), compared without case or spaces, and the same
  few characters repeated.

Messages say what to do in plain words; the pages show them beside the field and the API
returns them in the problem's ``errors``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from service.errors import FieldError, unprocessable

PASSWORD_MIN = 15
PASSWORD_MAX = 256
LIST = Path(__file__).with_name("common_passwords") / "top-1000000-15-or-more-characters.txt"
ADVICE = "Three or four random words make a strong password that is easy to remember."


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, folded as ``_folded`` folds a candidate (loaded once, ~1 MB)."""
    lines = LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(_folded(line) for line in lines if line)


def _folded(password: str) -> str:
    # "Password Password" is as guessable as "passwordpassword".
    return "".join(password.casefold().split())


def password_errors(password: str, field: str = "password") -> list[FieldError]:
    """What is wrong with ``password`` as a new password, in words (empty: it will do)."""
    if not password:
        return [FieldError(field, "Enter a password.")]
    if len(password) < PASSWORD_MIN:
        return [
            FieldError(field, f"Your password must be at least {PASSWORD_MIN} characters. {ADVICE}")
        ]
    if len(password) > PASSWORD_MAX:
        return [FieldError(field, f"Your password must be {PASSWORD_MAX} characters or fewer.")]
    if len(set(_folded(password))) <= 3:
        return [
            FieldError(
                field, f"Your password repeats a few characters, so it is easy to guess. {ADVICE}"
            )
        ]
    if _folded(password) in common_passwords():
        return [
            FieldError(
                field,
                "This is one of the most common passwords, so it is easy to guess. "
                f"Choose another. {ADVICE}",
            )
        ]
    return []


def require_good_password(password: str, field: str = "password") -> None:
    """Raise 422 (problem+json, the reason in ``errors``) unless ``password`` will do."""
    errors = password_errors(password, field)
    if errors:
        raise unprocessable(errors[0].reason, errors)
