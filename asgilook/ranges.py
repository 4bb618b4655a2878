"""Byte ranges (RFC 9110, section 14) as small pure functions."""

_BEYOND = 2**63


class Unsatisfiable(Exception):
    """No requested range overlaps the representation: answer 416."""


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` byte positions a Range header asks for.

    Returns None where the whole representation is to be sent: no header, a
    header we may ignore (another unit, a syntax error, several ranges).
    Raises :class:`Unsatisfiable` where the one range lies beyond the end.
    """
    if header is None:
        return None
    unit, _, ranges = header.strip().partition('=')
    if unit.strip().lower() != 'bytes' or ',' in ranges:
        return None

    first, dash, last = ranges.strip().partition('-')
    first, last = first.strip(), last.strip()
    if not dash or not _digits(first or '0') or not _digits(last or '0'):
        return None

    if not first:
        if not last:
            return None
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(size - suffix, 0), size - 1

    start = _number(first)
    if last and _number(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(_number(last), size - 1) if last else size - 1


def _number(digits: str) -> int:
    # NOTE: Past 18 digits, any number is beyond every file we serve; and
    #   Python refuses to convert strings of over 4300 digits at all.
    digits = digits.lstrip('0') or '0'
    return int(digits) if len(digits) <= 18 else _BEYOND


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
