"""Incremental decoder of ``Content-Encoding: aws-chunked`` bodies, as botocore sends them with
``x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER``: ``hex(len)[;chunk-signature=…]\\r\\n``
then the bytes and ``\\r\\n``, repeated, ending with a zero-length chunk, trailer lines
``name:value\\r\\n`` and an empty line. Fed the body as it arrives, it hands back the data bytes and,
at the end, the trailers. Anything else (a bad size line, a missing CRLF, bytes after the end, a body
that stops early) is ``StorageError`` ``IncompleteBody``/``InvalidRequest``; memory stays bounded by
one network read plus one header line.
"""

from __future__ import annotations

from activities.errors import StorageError

MAX_LINE = 4096  # a size line or a trailer line
MAX_TRAILERS = 16

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _bad(message: str) -> StorageError:
    return StorageError("InvalidRequest", f"malformed aws-chunked body: {message}", 400)


class AwsChunkedDecoder:
    def __init__(self, max_chunk: int) -> None:
        self.max_chunk = max_chunk
        self.trailers: dict[str, str] = {}
        self.chunk_signatures: list[str] = []
        self._state = _SIZE
        self._remaining = 0
        self._buffer = bytearray()

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        """The data bytes contained in ``data`` (possibly none), in order."""
        out: list[bytes] = []
        if not data:
            return out
        if self._state == _DONE:
            raise _bad("bytes after the final chunk")
        if self._state == _DATA and not self._buffer:  # the common case: slice the read, copy nothing twice
            view, pos = memoryview(data), 0
            take = min(self._remaining, len(data))
            out.append(bytes(view[:take]))
            self._remaining -= take
            pos = take
            if self._remaining == 0:
                self._state = _DATA_END
            data = bytes(view[pos:])
            if not data:
                return out
        self._buffer += data
        self._drain(out)
        return out

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise _bad("line too long")
            return None
        if end > MAX_LINE:
            raise _bad("line too long")
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        return line

    def _drain(self, out: list[bytes]) -> None:
        while self._buffer:
            if self._state == _SIZE:
                line = self._line()
                if line is None:
                    return
                self._start_chunk(line)
            elif self._state == _DATA:
                take = min(self._remaining, len(self._buffer))
                out.append(bytes(self._buffer[:take]))
                del self._buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_END
            elif self._state == _DATA_END:
                if len(self._buffer) < 2:
                    return
                if self._buffer[:2] != b"\r\n":
                    raise _bad("chunk data longer than its declared size")
                del self._buffer[:2]
                self._state = _SIZE
            elif self._state == _TRAILER:
                line = self._line()
                if line is None:
                    return
                if not line:
                    self._state = _DONE
                else:
                    self._add_trailer(line)
            else:
                raise _bad("bytes after the final chunk")

    def _start_chunk(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise _bad("chunk size is not hexadecimal") from None
        if size < 0 or len(size_text) > 16 or size > self.max_chunk:
            raise StorageError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400)
        if extension:
            name, _, value = extension.partition(b"=")
            if name.strip() == b"chunk-signature":
                self.chunk_signatures.append(value.strip().decode("ascii", "replace"))
        if size == 0:
            self._state = _TRAILER
        else:
            self._state, self._remaining = _DATA, size

    def _add_trailer(self, line: bytes) -> None:
        name, sep, value = line.partition(b":")
        if not sep or len(self.trailers) >= MAX_TRAILERS:
            raise _bad("malformed trailer")
        self.trailers[name.strip().lower().decode("ascii", "replace")] = value.strip().decode("ascii", "replace")

    def finish(self) -> dict[str, str]:
        """The trailers; IncompleteBody when the body ended before its final chunk and blank line."""
        if self._state != _DONE:
            raise StorageError("IncompleteBody", "The request body ended before its final aws-chunked chunk", 400)
        return self.trailers
