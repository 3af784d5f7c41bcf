"""JSON from files and messages we did not write: ``json.loads`` without its one crash.

``json.loads`` recurses once per nesting level, so a document of a few hundred kilobytes of ``[``
(a planted ``manifest.json``, a hostile message) ends in a ``RecursionError`` that no ``except
ValueError`` catches.  :func:`parse_json` turns it into the ``json.JSONDecodeError`` every reader
already handles as "not the expected JSON".
"""

from __future__ import annotations

import json
from typing import Any


def parse_json(data: str | bytes | bytearray) -> Any:  # noqa: ANN401 - as json.loads: callers check types
    """``json.loads(data)``; a document nested too deeply raises ``json.JSONDecodeError`` too."""
    try:
        return json.loads(data)
    except RecursionError:
        text = data if isinstance(data, str) else bytes(data[:64]).decode("utf-8", "replace")
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
