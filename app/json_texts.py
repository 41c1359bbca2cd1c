"""JSON texts of many dicts of one shape, encoded once: for the pushed frames of a send
(``patches.socketio.event_texts``) and the webhook's batch answer (``patches.flask``).

A send's notifications differ in their id and recipient only (and in status and delivery time,
pending or delivered). ``shaped_texts`` encodes the first with a placeholder in each field that
varies and writes each dict's own values into the gaps: the same text each encode would make
(tests/unit/test_event_texts.py and tests/unit/test_shaped_answers.py compare them).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

#: A placeholder no payload has (a private-use character): found once per slot, or no template.
SLOT = "\ue000notify-slot-{}\ue000"
#: Values a slot may take: their JSON text does not depend on anything around them.
SLOT_TYPES = (str, int, type(None))
#: Types whose equal values have one JSON text.
EXACT_TYPES = (str, int, bool, type(None))

#: The JSON text of a slot's value, by its type.
ValueTexts = dict[type, Callable[[Any], str]]


def shaped_texts(
    encode: Callable[[Any], str], dumps: Any, value_texts: ValueTexts, payloads: Sequence[Any]
) -> list[str]:
    """``encode(data)`` of each payload, the payloads that share a shape (dicts with the same
    keys in the same order, equal but for a few str/int/None fields) encoded once.

    ``dumps`` encodes a lone value (to compare values that are equal but may be encoded
    otherwise); ``value_texts`` gives a slot value's text as ``encode`` writes it inside a
    payload (the same ``ensure_ascii``). Raises TypeError, as ``json.dumps`` does, for what JSON
    cannot carry."""
    first = payloads[0] if payloads else None
    if len(payloads) < 2 or type(first) is not dict:
        return [encode(data) for data in payloads]
    keys = list(first)
    for data in payloads:
        if type(data) is not dict or list(data) != keys:
            return [encode(data) for data in payloads]
    # A field is the same in every payload when each value is the first's object (compared by
    # id, in C) or, failing that, has the same JSON text (1 and 1.0 are equal, not the same).
    count = len(payloads)
    if len(keys) > 1:
        columns = list(zip(*map(operator.itemgetter(*keys), payloads), strict=True))
    else:
        columns = [tuple(data[keys[0]] for data in payloads)]
    slots = [
        key
        for key, column in zip(keys, columns, strict=True)
        if list(map(id, column)).count(id(first[key])) != count
        and _differs(dumps, first[key], column)
    ]
    if any(type(data[key]) not in SLOT_TYPES for data in payloads for key in slots):
        return [encode(data) for data in payloads]
    cut = template(encode, value_texts[str], first, slots)
    if cut is None:
        return [encode(data) for data in payloads]
    head, gaps = cut
    texts = []
    for data in payloads:
        pieces = [head]
        for key, after in gaps:
            value = data[key]
            pieces.append(value_texts[type(value)](value))
            pieces.append(after)
        texts.append("".join(pieces))
    return texts


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


def _differs(dumps: Any, value: Any, column: Sequence[Any]) -> bool:
    """Whether any of ``column`` is encoded otherwise than ``value`` (all compared in C where
    equal values of one type are encoded alike: str, int, bool, None; -0.0 == 0.0 is not)."""
    if column.count(value) != len(column):
        return True
    kind = type(value)
    if kind in EXACT_TYPES:
        return any(type(other) is not kind for other in column)
    text = dumps(value)
    return any(other is not value and dumps(other) != text for other in column)


def json_value_texts(ensure_ascii: bool = True) -> ValueTexts:
    """A slot value's text as ``json``'s encoder writes it with ``ensure_ascii`` (its C string
    encoders, ``int.__repr__``; ``default``, separators and key order do not touch these)."""
    quote = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    return {str: quote, int: int.__repr__, type(None): lambda _value: "null"}
