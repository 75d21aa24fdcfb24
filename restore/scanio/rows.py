"""TIFF results written as their rows are computed (uncompressed, or strip by strip with the
scan's lossless codec), then published as every result is: SHA-256, fsync, rename."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from restore.scanio.write import Provenance, publish, tiff_arguments, temporary_name, xmp_packet
from restore.scanio.read import Metadata
from restore.scanio.probe import one_line

#: The codecs a streamed compressed result is written with: tifffile's own, by the tag it
#: writes for each compression name a result can have (restore/scanio/read.py).
_STRIP_COMPRESSION_TAGS = {
    "zlib": tifffile.COMPRESSION.ADOBE_DEFLATE,
    "lzw": tifffile.COMPRESSION.LZW,
    "packbits": tifffile.COMPRESSION.PACKBITS,
    "zstd": tifffile.COMPRESSION.ZSTD,
}


def streams_rows(fmt: str, alpha: np.ndarray | None, metadata: Metadata) -> bool:
    """Whether a result can be written by `tiff_rows` as its rows are computed: a TIFF
    without alpha, uncompressed or with one of the lossless codecs results keep."""
    return fmt == "TIFF" and alpha is None and (metadata.tiff_compression is None or metadata.tiff_compression in _STRIP_COMPRESSION_TAGS)


def tiff_rows(
    path: Path, height: int, width: int, dtype: type[np.uint8] | type[np.uint16], metadata: Metadata, provenance: Provenance, rows_per_strip: int,
    *, replace: bool = False,
) -> TiffRows | CompressedTiffRows:
    """The row writer for a TIFF result (see `streams_rows`): rows come in strips of
    `rows_per_strip` (the last one shorter), each once, in any order, from any thread.
    `replace`: as `output.publish`."""
    if metadata.tiff_compression is None:
        rows: TiffRows | CompressedTiffRows = TiffRows(path, height, width, dtype, metadata, provenance)
    else:
        rows = CompressedTiffRows(path, height, width, dtype, metadata, provenance, rows_per_strip)
    rows.replace = replace
    return rows


class _ResultRows:
    """What the row writers share: the result's shape, a hidden temporary file beside it,
    the record of rows written, and leaving: publish (SHA-256, fsync, rename) when every row
    was written, remove the temporary file otherwise."""

    def __init__(self, path: Path, height: int, width: int, dtype: type[np.uint8] | type[np.uint16], metadata: Metadata, provenance: Provenance) -> None:
        self.path, self.height, self.width = path, height, width
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.sha256: str | None = None
        self.replace = False  # publish over an existing file at `path` (output.publish)
        self._xmp, self._metadata = xmp_packet(provenance), metadata
        self._rows_done = np.zeros(height, bool)

    def _name_temporary(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = temporary_name(self.path)

    def _check(self, top: int, rows: np.ndarray) -> None:
        if rows.shape[1:] != (self.width, 3) or not 0 <= top <= self.height - len(rows) or rows.dtype != self.dtype:
            raise ValueError(f"rows {rows.shape} {rows.dtype} at {top} do not fit a {self.height} x {self.width} x 3 {self.dtype} result")

    def _missing(self) -> str | None:
        """Why the file is incomplete, or None when every row was written."""
        if self._rows_done.all():
            return None
        return f"{self.path}: rows {np.flatnonzero(~self._rows_done)[0]}.. were never written"

    def _finish(self, failed: bool) -> None:
        """Publish the temporary file, or (`failed`, rows missing, or the file's writing
        failed) remove it."""
        try:
            if failed:
                return  # the caller's error goes on; the temporary file goes (finally)
            missing = self._missing()
            if missing:
                raise RuntimeError(missing)
            self._check_written()
            self.sha256 = publish(self._temporary, self.path, replace=self.replace)
        finally:
            self._temporary.unlink(missing_ok=True)  # after publishing, already renamed away

    def _check_written(self) -> None:
        """Raise if writing the file failed away from the computing threads (TiffRows writes
        from those threads, whose errors surface by themselves: nothing to check)."""


class TiffRows(_ResultRows):
    """An uncompressed RGB TIFF result written as its rows are computed, from any number of
    threads at once, then published as `write_result` publishes (SHA-256, fsync, rename).

    tifffile lays out the file (tags, XMP, ICC, an empty contiguous image); each batch of
    rows goes to its place with os.pwrite, which releases the GIL, so writing overlaps the
    computing of the next rows instead of following all of it. Use as a context manager:
    on leaving without error every row must have been written, and `sha256` is set; on an
    error the temporary file is removed and nothing appears at `path`.
    """

    def __enter__(self) -> TiffRows:
        self._name_temporary()
        self._row_bytes = self.width * 3 * self.dtype.itemsize
        try:
            offset, size = tifffile.imwrite(
                self._temporary, None, shape=(self.height, self.width, 3), dtype=self.dtype, byteorder="<",
                photometric="rgb", returnoffset=True, **tiff_arguments(self._metadata, self._xmp),
            )
            if size != self.height * self._row_bytes:
                raise RuntimeError(f"{self._temporary}: tifffile laid out {size} bytes of pixels, not {self.height * self._row_bytes}")
            self._offset = offset
            self._fd = os.open(self._temporary, os.O_WRONLY)
        except BaseException:
            self._temporary.unlink(missing_ok=True)
            raise
        return self

    def write(self, top: int, rows: np.ndarray) -> None:
        """Rows `top` .. top + len(rows) of the result (n x width x 3 at the result's dtype)."""
        self._check(top, rows)
        data = memoryview(np.ascontiguousarray(rows)).cast("B")
        position = self._offset + top * self._row_bytes
        while data:
            written = os.pwrite(self._fd, data, position)
            data, position = data[written:], position + written
        self._rows_done[top : top + len(rows)] = True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        os.close(self._fd)
        self._finish(failed=kind is not None)


class _Cancelled(Exception):
    """Raised inside tifffile's write to abandon a result whose rows will not all come."""


class CompressedTiffRows(_ResultRows):
    """A compressed RGB TIFF result (zlib, LZW, PackBits or Zstandard: the scan's own)
    written as its rows are computed, then published as `write_result` publishes.

    Each strip of `rows_per_strip` rows is compressed by the thread that computed it, with
    tifffile's own codec, and a writer thread hands the compressed strips to tifffile in
    order as they become ready: the file is byte for byte what tifffile writes from the
    whole array with that strip height, but neither the whole uncompressed result nor the
    compressing of it after the computing is needed. Use as a context manager, as TiffRows.
    """

    def __init__(self, path: Path, height: int, width: int, dtype: type[np.uint8] | type[np.uint16], metadata: Metadata, provenance: Provenance, rows_per_strip: int) -> None:
        super().__init__(path, height, width, dtype, metadata, provenance)
        self.rows_per_strip = rows_per_strip
        self._codec = tifffile.TIFF.COMPRESSORS[_STRIP_COMPRESSION_TAGS[metadata.tiff_compression]]
        # PackBits runs must not cross rows: tifffile gives its codec the rows' axis.
        self._codec_arguments = {"axis": -2} if metadata.tiff_compression == "packbits" else {}
        self._strips: dict[int, bytes] = {}  # compressed, waiting for the writer thread
        self._changed = threading.Condition()
        self._cancelled = False
        self._writer_error: BaseException | None = None

    def __enter__(self) -> CompressedTiffRows:
        self._name_temporary()
        self._writer = threading.Thread(target=self._write_file, name=f"write {self.path.name}", daemon=True)
        self._writer.start()
        return self

    def _write_file(self) -> None:
        try:
            tifffile.imwrite(
                self._temporary, self._strips_in_order(), shape=(self.height, self.width, 3), dtype=self.dtype,
                byteorder="<", photometric="rgb", rowsperstrip=self.rows_per_strip, **tiff_arguments(self._metadata, self._xmp),
            )
        except BaseException as error:  # kept for the computing threads and __exit__
            with self._changed:
                self._writer_error = error
                self._changed.notify_all()

    def _strips_in_order(self) -> Iterator[bytes]:
        for top in range(0, self.height, self.rows_per_strip):
            with self._changed:
                while top not in self._strips and not self._cancelled:
                    self._changed.wait()
                if self._cancelled:
                    raise _Cancelled
                strip = self._strips.pop(top)
            yield strip

    def write(self, top: int, rows: np.ndarray) -> None:
        """Strip `top` .. top + len(rows) of the result: a whole strip (the last may be shorter)."""
        self._check(top, rows)
        if top % self.rows_per_strip or len(rows) != min(self.rows_per_strip, self.height - top):
            raise ValueError(f"rows {top}..{top + len(rows)} are not one of {self.path.name}'s {self.rows_per_strip}-row strips")
        self._check_written()
        strip = self._codec(np.ascontiguousarray(rows), **self._codec_arguments)
        with self._changed:
            self._strips[top] = strip
            self._rows_done[top : top + len(rows)] = True
            self._changed.notify_all()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        failed = kind is not None or self._missing() is not None
        if failed:
            with self._changed:
                self._cancelled = True
                self._changed.notify_all()
        self._writer.join()
        self._finish(failed=kind is not None)

    def _check_written(self) -> None:
        """Raise if the writer thread failed (the disk full, say)."""
        error = self._writer_error
        if error is not None:
            raise OSError(f"{self.path}: writing failed: {one_line(error)}") from error
