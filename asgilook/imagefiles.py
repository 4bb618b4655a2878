"""Finding the files to upload: folders walked, images known by name or bytes.

A regular file named on the command line is always taken: the server decides
what it is. In a folder, a file is taken when its extension is an image's, or
when its first bytes are an image format's signature; the others are skipped,
and counted. Pipes, devices and sockets are never opened: named, they are an
error; in a folder, skipped. Each file and each folder is visited once, however
many paths or symbolic links lead to it, so that a link to a parent folder
cannot loop.
"""

import dataclasses
import os
import stat

IMAGE_SUFFIXES = frozenset(
    {
        '.apng', '.avif', '.bmp', '.dib', '.gif', '.heic', '.heif', '.jfif',
        '.jpe', '.jpeg', '.jpg', '.mpo', '.png', '.tif', '.tiff', '.webp',
    }
)  # fmt: skip
_SIGNATURES = (
    b'\xff\xd8\xff',  # JPEG, MPO
    b'\x89PNG\r\n\x1a\n',
    b'GIF87a',
    b'GIF89a',
    b'BM',
    b'II*\x00',  # TIFF, little- and big-endian, then BigTIFF
    b'MM\x00*',
    b'II+\x00',
    b'MM\x00+',
)
# NOTE: AVIF and HEIF are ISO media files: 'ftyp' and a brand at offset 4.
_ISO_BRANDS = frozenset(
    {b'avif', b'avis', b'heic', b'heix', b'heim', b'heis', b'hevc', b'mif1', b'msf1'}
)
_HEAD = 16
NOT_REGULAR = 'Not a regular file'


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A file to upload, and its size when it was found (0 if unknown)."""

    path: str
    size: int


@dataclasses.dataclass
class Found:
    """What the paths held: files to upload, files skipped, and errors: folders
    that could not be read, and named paths that are not regular files."""

    files: list[Candidate] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    errors: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def looks_like_image(head: bytes) -> bool:
    """Whether a file's first bytes are the signature of an image format."""
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b'RIFF' and head[8:12] == b'WEBP':
        return True
    return head[4:8] == b'ftyp' and head[8:12] in _ISO_BRANDS


def find(paths: list[str]) -> Found:
    """The files to upload under ``paths``, in a stable (sorted) order."""
    finder = _Finder()
    for path in paths:
        if os.path.isdir(path):
            finder.walk(path)
        else:
            finder.add(path, named=True)
    return finder.found


class _Finder:
    def __init__(self):
        self.found = Found()
        self._files = set()
        self._folders = set()

    def add(self, path, named=False):
        key = os.path.realpath(path)
        if key in self._files:
            return
        self._files.add(key)
        try:
            status = os.stat(path)
            # NOTE: Only regular files are opened: a pipe would wait for a
            #   writer, a device might never end, and neither is an image file.
            special = not stat.S_ISREG(status.st_mode)
            image = not special and (named or _looks_like_an_image_file(path))
        except OSError:
            # NOTE: Taken, so that its upload reports why it cannot be read.
            self.found.files.append(Candidate(path, 0))
            return
        if image:
            self.found.files.append(Candidate(path, status.st_size))
        elif special and named:
            self.found.errors.append((path, NOT_REGULAR))
        else:
            self.found.skipped.append(path)

    def walk(self, top):
        if not self._first_visit(top):
            return
        # NOTE: Links are followed, but every folder is entered once only
        #   (_first_visit), so that a link to a parent ends the descent.
        for root, folders, names in os.walk(
            top, onerror=self._unread, followlinks=True
        ):
            folders[:] = [
                name
                for name in sorted(folders)
                if self._first_visit(os.path.join(root, name))
            ]
            for name in sorted(names):
                self.add(os.path.join(root, name))

    def _first_visit(self, folder):
        key = os.path.realpath(folder)
        first = key not in self._folders
        self._folders.add(key)
        return first

    def _unread(self, ex):
        self.found.errors.append((ex.filename, ex.strerror))


def _looks_like_an_image_file(path):
    if os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES:
        return True
    # NOTE: Non-blocking, in case a pipe has taken the file's place since.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return looks_like_image(os.read(fd, _HEAD))
    finally:
        os.close(fd)
