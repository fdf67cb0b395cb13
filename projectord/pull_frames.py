"""The frames projectord and its pull helper exchange over their socket pair.

A frame is a 4-byte big-endian length and a pickle. Both ends are this
package's own processes over a private socket pair, so pickle is safe here.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct(">I")


def encode(obj: Any) -> bytes:
    """One frame holding ``obj``."""
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> Any:
    """The next frame's object; ``asyncio.IncompleteReadError`` at the end of the stream."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))
