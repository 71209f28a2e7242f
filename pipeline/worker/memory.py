"""A forked trial's memory made what a fresh interpreter's would be (Linux 5.14 or later).

A child forked from a fork server (``trial_process: warm``) starts out sharing its heap with
the server, and none of the interpreter's code pages are mapped in it yet; so its USS and
PSS would count its heap at a half or not at all, and its RSS would lack the code a fresh
interpreter touched while it started. Three steps put that right, each a madvise(2) over
runs of pages found in /proc/PID/pagemap (whose flags, unlike its frame numbers, any
process may read of itself):

- the server records, once, the file pages it has in memory after importing the worker
  (``file_pages``): what a fresh worker has mapped when its trial begins;
- the child copies every heap page it still shares with the server (MADV_POPULATE_WRITE on
  the present, not exclusively mapped pages of its private writable mappings, as a write
  to each would; pages never touched stay unallocated, and the stack is left) and maps in
  the server's file pages (MADV_POPULATE_READ) (``adopt``);
- the server then unmaps its own clean file pages (MADV_DONTNEED on the pages of its
  private file mappings that are still the file's: they stay in the page cache and come
  back at the next touch) (``drop_file_pages``), so that the child shares its code pages
  with the processes a fresh worker would share them with, and not with one more.

Standard library only. Every function returns None where this cannot be done (another
system, an older kernel), and the trial then runs with its memory as forked.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional, Tuple

    Runs = List[Tuple[int, int]]  # (address, bytes)

_DONTNEED, _POPULATE_READ, _POPULATE_WRITE = 4, 22, 23
# flags in the top byte of a pagemap entry (its bits 56 to 63)
_PRESENT, _FILE_PAGE, _EXCLUSIVE = 0x80, 0x20, 0x01


class _Pages:
    """This process's mappings and page flags, and madvise."""

    def __init__(self) -> None:
        import ctypes

        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.size = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/maps", encoding="ascii") as handle:
            self.mappings = [line.split() for line in handle]
        self.pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)

    def runs(self, fields: List[str], mask: int, value: int) -> Runs:
        """(address, bytes) of each run of pages of a mapping whose flags, in the top byte
        of their pagemap entry (bits 56 to 63), are ``value`` under ``mask``."""
        first_page, end_page = (int(bound, 16) // self.size for bound in fields[0].split("-"))
        entries = os.pread(self.pagemap, (end_page - first_page) * 8, first_page * 8)
        table = bytes(1 if byte & mask == value else 0 for byte in range(256))
        hits = entries[7::8].translate(table)  # little-endian: the top byte of each entry
        found: Runs = []
        index = hits.find(1)
        while index != -1:
            end = hits.find(0, index)
            end = len(hits) if end == -1 else end
            found.append(((first_page + index) * self.size, (end - index) * self.size))
            index = hits.find(1, end)
        return found

    def advise(self, runs: Runs, advice: int) -> Optional[int]:
        """madvise every run; the pages advised, or None if the kernel refused."""
        for address, size in runs:
            if self.libc.madvise(address, size, advice) != 0:
                return None
        return sum(size for _, size in runs) // self.size

    def close(self) -> None:
        os.close(self.pagemap)


def unusable() -> Optional[str]:
    """Why a forked child's memory cannot be made a fresh worker's here, or None."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return "needs Linux"
    try:
        import ctypes
        import mmap

        pages = _Pages()
    except (OSError, AttributeError, ImportError) as error:
        return f"cannot read this process's pages: {error}"
    try:
        block = mmap.mmap(-1, pages.size)
        buffer = (ctypes.c_char * pages.size).from_buffer(block)
        try:
            address = ctypes.addressof(buffer)
            for advice in (_POPULATE_READ, _POPULATE_WRITE):
                if pages.libc.madvise(address, pages.size, advice) != 0:
                    return "this kernel has no MADV_POPULATE_READ/WRITE (Linux 5.14 or later)"
        finally:
            del buffer
            block.close()
    finally:
        pages.close()
    return None


def _with_pages(work: Callable[[_Pages], Any]) -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        pages = _Pages()
    except (OSError, AttributeError):
        return None
    try:
        return work(pages)
    except OSError:
        return None
    finally:
        pages.close()


def _file_backed(fields: List[str]) -> bool:
    """A private mapping of a file (the interpreter, a library, a module), readable."""
    perms = fields[1]
    return len(fields) > 5 and fields[4] != "0" and perms[0] == "r" and perms[3] == "p"


def file_pages() -> Optional[Runs]:
    """The file pages this process has in memory: what a forked child maps in (``adopt``)."""

    def find(pages: _Pages) -> Runs:
        found: Runs = []
        for fields in pages.mappings:
            if _file_backed(fields):
                found += pages.runs(fields, _PRESENT | _FILE_PAGE, _PRESENT | _FILE_PAGE)
        return found

    result: Optional[Runs] = _with_pages(find)
    return result


def adopt(template: Optional[Runs]) -> Optional[int]:
    """In a forked child: copy the heap pages shared with the parent and map in the
    parent's file pages (``template``, from ``file_pages``). The pages handled, or None."""

    def work(pages: _Pages) -> Optional[int]:
        heap: Runs = []
        for fields in pages.mappings:
            perms = fields[1]
            if perms[:2] == "rw" and perms[3] == "p" and fields[-1] != "[stack]":
                heap += pages.runs(fields, _PRESENT | _EXCLUSIVE, _PRESENT)  # shared
        copied = pages.advise(heap, _POPULATE_WRITE)
        mapped = pages.advise(template or [], _POPULATE_READ)
        return None if copied is None or mapped is None else copied + mapped

    result: Optional[int] = _with_pages(work)
    return result


def drop_file_pages() -> Optional[int]:
    """Unmap this process's clean file pages (pages of its private file mappings that are
    still the file's, never written; they stay in the page cache): the pages dropped, or
    None."""

    def work(pages: _Pages) -> Optional[int]:
        clean: Runs = []
        for fields in pages.mappings:
            if _file_backed(fields):
                clean += pages.runs(fields, _PRESENT | _FILE_PAGE, _PRESENT | _FILE_PAGE)
        return pages.advise(clean, _DONTNEED)

    result: Optional[int] = _with_pages(work)
    return result
