import os

import pytest

from asgilook.files import write_atomically


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
