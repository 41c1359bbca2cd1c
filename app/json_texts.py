"""JSON texts of many dicts of one shape, encoded once: for the pushed frames of a send
(``patches.socketio.event_texts``) and the webhook's batch answer (``patches.flask``).

A send's notifications differ in their id and recipient only (and in status and delivery time,
pending or delivered). ``shaped_texts`` encodes the first with a placeholder in each field that
varies and writes each dict's own values into the gaps: the same text each encode would make
(tests/unit/test_event_texts.py and tests/unit/test_shaped_answers.py compare them).
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: A placeholder no payload has (a private-use character): found once per slot, or no template.
SLOT = "\ue000notify-slot-{}\ue000"
#: Values a slot may take: their JSON text does not depend on anything around them.
SLOT_TYPES = (str, int, type(None))
SLOT_TYPE_SET = frozenset(SLOT_TYPES)
#: Types whose equal values have one JSON text.
EXACT_TYPES = (str, int, bool, type(None))

#: The JSON text of a slot's value, by its type.
ValueTexts = dict[type, Callable[[Any], str]]


def shaped_dumps(
    encode: Callable[[Any], str], dumps: Any, value_texts: ValueTexts, obj: Any
) -> str:
    """``encode(obj)`` for a compact ``encode`` (items separated by ``,``), each list among a
    dict's values encoded once per shape of its items (``shaped_texts``): a batch's answer."""
    lists = (
        [key for key, value in obj.items() if type(value) is list and len(value) > 1]
        if type(obj) is dict
        else []
    )
    cut = template(encode, value_texts[str], obj, lists) if lists else None
    if cut is None:
        return encode(obj)
    head, gaps = cut
    pieces = [head]
    for key, after in gaps:
        pieces += ("[", ",".join(shaped_texts(encode, dumps, value_texts, obj[key])), "]", after)
    return "".join(pieces)


def shaped_texts(
    encode: Callable[[Any], str], dumps: Any, value_texts: ValueTexts, payloads: Sequence[Any]
) -> list[str]:
    """``encode(data)`` of each payload, the payloads that share a shape (dicts with the same
    keys in the same order, equal but for a few str/int/None fields) encoded once.

    ``dumps`` encodes a lone value (to compare values that are equal but may be encoded
    otherwise); ``value_texts`` gives a slot value's text as ``encode`` writes it inside a
    payload (the same ``ensure_ascii``). Raises TypeError, as ``json.dumps`` does, for what JSON
    cannot carry.

    The work is done a column (a key of every payload) at a time, in C where it can be: the
    columns taken, compared and their slot values written by ``map``, each text joined from
    the template's pieces and its values."""
    first = payloads[0] if payloads else None
    if len(payloads) < 2 or type(first) is not dict:
        return [encode(data) for data in payloads]
    keys = list(first)
    for data in payloads:
        if type(data) is not dict or list(data) != keys:
            return [encode(data) for data in payloads]
    count = len(payloads)
    filled: dict[Any, list[str]] = {}  # each slot's values' texts, by key
    for key in keys:
        column = list(map(operator.itemgetter(key), payloads))
        if not _differs(dumps, first[key], column):
            continue
        texts = _column_texts(value_texts, column)
        if texts is None:
            return [encode(data) for data in payloads]
        filled[key] = texts
    cut = template(encode, value_texts[str], first, list(filled))
    if cut is None:
        return [encode(data) for data in payloads]
    head, gaps = cut
    pieces: list[Iterable[str]] = [itertools.repeat(head, count)]
    for key, after in gaps:
        pieces += (filled[key], itertools.repeat(after, count))
    return list(map("".join, zip(*pieces, strict=True)))


def _column_texts(value_texts: ValueTexts, column: list[Any]) -> list[str] | None:
    """The JSON text of each value of a slot's column, or None when one is of no slot type."""
    kinds = set(map(type, column))
    if not kinds <= SLOT_TYPE_SET:
        return None
    if len(kinds) == 1:
        return list(map(value_texts[kinds.pop()], column))
    return [value_texts[type(value)](value) for value in column]


def template(
    encode: Callable[[Any], str],
    text_of: Callable[[str], str],
    first: dict[Any, Any],
    slots: list[Any],
) -> tuple[str, list[tuple[Any, str]]] | None:
    """``first``'s text cut at each of ``slots`` (its keys): the text before the first gap and
    each gap's key with the text after it, in the text's order (sorted keys may not be the
    dict's); or None when a placeholder is not found exactly once."""
    marked = dict(first)
    found = []
    for index, key in enumerate(slots):
        marked[key] = SLOT.format(index)
        found.append((text_of(marked[key]), key))
    text = encode(marked)
    if any(text.count(marker) != 1 for marker, _ in found):
        return None
    found.sort(key=lambda marker_key: text.index(marker_key[0]))
    gaps = []
    for marker, key in reversed(found):
        text, _, after = text.rpartition(marker)
        gaps.append((key, after))
    gaps.reverse()
    return text, gaps


def _differs(dumps: Any, value: Any, column: list[Any]) -> bool:
    """Whether any of ``column`` is encoded otherwise than ``value``: the same when each is
    ``value`` itself or, failing that, has the same JSON text (1 and 1.0 are equal, not the
    same). Compared in C: equality (``is`` first), identity, then the type where equal values
    of one type are encoded alike (str, int, bool, None; -0.0 == 0.0 is not), else the
    column's text against ``value``'s repeated."""
    if column.count(value) != len(column):
        return True
    if all(map(operator.is_, column, itertools.repeat(value))):
        return False
    kind = type(value)
    if kind in EXACT_TYPES:
        return set(map(type, column)) != {kind}
    return bool(dumps(column) != dumps([value] * len(column)))


def json_value_texts(ensure_ascii: bool = True) -> ValueTexts:
    """A slot value's text as ``json``'s encoder writes it with ``ensure_ascii`` (its C string
    encoders, ``int.__repr__``; ``default``, separators and key order do not touch these)."""
    quote = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    return {str: quote, int: int.__repr__, type(None): lambda _value: "null"}
