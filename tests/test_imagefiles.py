"""Finding the files asgilook upload sends: walks, sniffing, links, pipes."""

import os
import socket

import pytest

from asgilook import imagefiles

from . import corpus
from .helpers import deep_folder

PNG = corpus.encode(corpus.pattern((8, 6)), 'PNG')


@pytest.mark.parametrize(
    'head',
    [
        corpus.encode(corpus.pattern((8, 6)), 'JPEG')[:16],
        PNG[:16],
        b'GIF87a\x01\x00',
        b'GIF89a\x01\x00',
        b'BM\x36\x00\x00\x00',
        b'II*\x00\x08\x00\x00\x00',
        b'MM\x00*\x00\x00\x00\x08',
        b'II+\x00\x08\x00\x00\x00',
        b'RIFF\x24\x00\x00\x00WEBPVP8 ',
        b'\x00\x00\x00\x1cftypavif\x00\x00',
        b'\x00\x00\x00\x18ftypheic\x00\x00',
    ],
)
def test_image_signatures(head):
    assert imagefiles.looks_like_image(head)


@pytest.mark.parametrize(
    'head',
    [
        b'',
        b'hello, world',
        b'%PDF-1.7\n',
        b'RIFF\x24\x00\x00\x00WAVEfmt ',
        b'\x00\x00\x00\x18ftypmp42\x00\x00',
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
    ],
)
def test_other_signatures(head):
    assert not imagefiles.looks_like_image(head)


def _tree(root):
    """A folder of images, others, links and a pipe; names relative to root."""
    (root / 'sub' / 'deeper').mkdir(parents=True)
    (root / 'a.png').write_bytes(PNG)
    # NOTE: Extensions are read whatever their case, and trusted.
    (root / 'sub' / 'B.JPG').write_bytes(b'not really')
    # NOTE: No extension: taken for its bytes.
    (root / 'sub' / 'deeper' / 'c').write_bytes(PNG)
    (root / 'notes.txt').write_text('not an image')
    (root / 'data.bin').write_bytes(os.urandom(64))
    (root / 'empty').write_bytes(b'')
    # NOTE: A link to a parent folder, and a second way to one file.
    (root / 'sub' / 'deeper' / 'up').symlink_to(root)
    (root / 'same.png').symlink_to(root / 'a.png')
    # NOTE: Taken, so that its failure is reported.
    (root / 'gone.png').symlink_to(root / 'nowhere.png')
    # NOTE: Never opened for reading, or the walk would wait for a writer.
    os.mkfifo(root / 'pipe.png')


def test_walk_takes_images_by_name_or_bytes(tmp_path):
    _tree(tmp_path)
    found = imagefiles.find([str(tmp_path)])

    def relative(paths):
        return [os.path.relpath(path, tmp_path) for path in paths]

    assert relative(file.path for file in found.files) == [
        'a.png',
        'gone.png',
        'sub/B.JPG',
        'sub/deeper/c',
    ]
    assert [file.size for file in found.files] == [len(PNG), 0, 10, len(PNG)]
    assert relative(found.skipped) == ['data.bin', 'empty', 'notes.txt', 'pipe.png']
    assert found.errors == []


def test_each_file_once_and_named_files_always(tmp_path):
    _tree(tmp_path)
    notes = str(tmp_path / 'notes.txt')
    found = imagefiles.find(
        [notes, str(tmp_path / 'sub'), str(tmp_path), str(tmp_path / 'missing')]
    )
    assert [file.path for file in found.files] == [
        # NOTE: Named, so sent: the server says what it is.
        notes,
        str(tmp_path / 'sub' / 'B.JPG'),
        str(tmp_path / 'sub' / 'deeper' / 'c'),
        # NOTE: Reached through sub/deeper/up first.
        str(tmp_path / 'sub' / 'deeper' / 'up' / 'a.png'),
        str(tmp_path / 'sub' / 'deeper' / 'up' / 'gone.png'),
        str(tmp_path / 'missing'),
    ]
    assert str(tmp_path / 'notes.txt') not in found.skipped


def test_a_folder_that_cannot_be_listed_is_an_error(tmp_path):
    deepest = deep_folder(tmp_path / 'deep')
    found = imagefiles.find([str(tmp_path / 'deep')])
    assert found.files == []
    [(path, why)] = found.errors
    assert path.startswith(str(tmp_path / 'deep'))
    assert why == 'File name too long'
    assert deepest.startswith(path)


def test_named_pipes_devices_and_sockets_are_errors_never_opened(tmp_path):
    # NOTE: Opened, the pipe would wait for a writer for ever.
    os.mkfifo(tmp_path / 'pipe.jpg')
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / 'socket.png'))
        paths = [str(tmp_path / name) for name in ('pipe.jpg', 'socket.png')]
        found = imagefiles.find([*paths, '/dev/zero'])
        in_a_folder = imagefiles.find([str(tmp_path)])
    assert found.errors == [
        (path, 'Not a regular file') for path in [*paths, '/dev/zero']
    ]
    assert found.files == found.skipped == []
    assert in_a_folder.skipped == paths
    assert in_a_folder.files == in_a_folder.errors == []
