"""The files the service sends (the dashboard's static files): read whole, nothing left open.

Quart's ``FileBody`` opens the file and seeks in worker threads inside ``__aenter__``. A response
cancelled there (the client went away, the server is stopping) leaves the opened file to the
garbage collector, which reports it as an unclosed file. The files tickstock sends are small static
assets in the page cache: one synchronous open-read-close has no cancellation point, leaves nothing
open whatever happens to the response, and saves a thread hop per 8 KiB chunk. A larger file keeps
Quart's streaming body.
"""

from __future__ import annotations

from os import PathLike
from types import TracebackType
from typing import Final

from quart.wrappers.response import FileBody as StreamingFileBody
from quart.wrappers.response import Response as QuartResponse

__all__ = ["INLINE_FILE_BYTES", "FileBody", "Response"]

# Larger than every static file the dashboard has (the biggest vendor build is ~170 KiB).
INLINE_FILE_BYTES: Final = 1 << 20


class FileBody(StreamingFileBody):
    """A file body read in one go when small (ranges honoured), streamed by Quart otherwise."""

    def __init__(self, file_path: str | PathLike[str], *, buffer_size: int | None = None) -> None:
        super().__init__(file_path, buffer_size=buffer_size)
        self._data: bytes | None = None
        self._sent = False

    async def __aenter__(self) -> FileBody:
        if self.size > INLINE_FILE_BYTES:
            await super().__aenter__()
            return self
        with self.file_path.open("rb") as file:
            file.seek(self.begin)
            self._data = file.read(max(self.end - self.begin, 0))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._data is None and self.file_manager is not None:
            await super().__aexit__(exc_type, exc_value, tb)  # type: ignore[arg-type]

    async def __anext__(self) -> bytes:
        if self._data is None:
            return await super().__anext__()
        if self._sent or not self._data:
            raise StopAsyncIteration
        self._sent = True
        return self._data


class Response(QuartResponse):
    """Quart's response with the file body above."""

    file_body_class = FileBody
