import os
import time

import pytest

from asgilook.blobs import files
from asgilook.blobs.files import write_atomically


def test_write_atomically(tmp_path):
    path = tmp_path / 'image'
    write_atomically(path, b'first')
    write_atomically(path, b'second')

    assert path.read_bytes() == b'second'
    assert os.listdir(tmp_path) == ['image']


def test_write_failing_midway_removes_the_temp_file(tmp_path):
    path = tmp_path / 'image'
    with pytest.raises(TypeError):
        write_atomically(path, 'not bytes')

    assert os.listdir(tmp_path) == []


def test_leftovers_skip_what_vanishes_and_live_writers(tmp_path, monkeypatch):
    (tmp_path / 'dangling').symlink_to(tmp_path / 'nowhere')
    other_user = tmp_path / f'.a.{files._HOST}.1.abc.tmp'
    other_user.write_bytes(b'x')

    def not_yours(pid, signal):
        raise PermissionError(1, 'Operation not permitted')

    # NOTE: Patched because no seam can exist: a process of another user is
    #   not something a test can start, and os.kill is how files asks.
    monkeypatch.setattr(files.os, 'kill', not_yours)
    assert files.leftovers(tmp_path, grace=60) == ([], [])


def test_files_that_vanish_while_listed_are_passed_over(tmp_path):
    assert files._status(tmp_path / 'renamed-away') is None


def test_temporary_files_of_others_go_once_unchanged_for_the_grace(tmp_path):
    other = tmp_path / '.a.elsewhere.1.abc.tmp'
    other.write_bytes(b'x')
    long_ago = time.time() - 3600
    os.utime(other, (long_ago, long_ago))

    assert files.leftovers(tmp_path, grace=60) == ([], [])
    time.sleep(0.05)
    assert files.leftovers(tmp_path, grace=0.01) == ([other], [])
