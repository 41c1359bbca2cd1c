"""After-request hooks answered from a capture of their own first answer.

Talisman and Flask-CORS work out the same headers for every request of a given shape (route,
method, scheme, ``Origin``, ...): on the webhook that was 0.02-0.045 ms per request of parsing
options and setting headers one by one. ``CapturedHeaders`` runs the extension's own hook the
first time a shape is seen, records exactly which headers it appended, and for the next
request of that shape appends the same ones, in the same order. A hook that did anything but
append (replaced or removed a header, returned another response) is never captured, and a
request whose shape the caller cannot name (``shape`` returns None) always runs the hook.
``tests/integration/test_captured_headers.py`` checks the answers are byte for byte the
extensions' own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from flask import Response

#: An after-request hook as Flask keeps it (typed loosely there: sync or async).
Hook = Callable[[Any], Any]
#: The shape of the current request and response, or None to run the hook as it is.
Shape = Callable[[Response], Hashable | None]
#: Shapes kept per hook: far more than the routes, methods and statuses of the hot paths.
MAX_SHAPES = 256


class CapturedHeaders:
    def __init__(self, hook: Hook, shape: Shape) -> None:
        self.hook = hook
        self.shape = shape
        self.captured: dict[Hashable, tuple[tuple[str, str], ...] | None] = {}

    def __call__(self, response: Response) -> Response:
        shape = self.shape(response)
        if shape is None:
            return self._run(response)
        # The names already on the response are part of the shape: a hook may skip or set a
        # header depending on whether it is there.
        key = (shape, tuple(name for name, _ in response.headers))
        if key in self.captured:
            added = self.captured[key]
            if added is None:  # this shape's hook did more than append: always run it
                return self._run(response)
            # What ``Headers.add`` appends, checked when it was captured (fenced in
            # ``app.patches.flask``).
            response.headers._list.extend(added)
            return response
        before = list(response.headers.items())
        answer = self._run(response)
        after = list(answer.headers.items())
        if len(self.captured) < MAX_SHAPES:
            appended = answer is response and after[: len(before)] == before
            self.captured[key] = tuple(after[len(before) :]) if appended else None
        return answer

    def _run(self, response: Response) -> Response:
        answer: Response = self.hook(response)
        return answer
