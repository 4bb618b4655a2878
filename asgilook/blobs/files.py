"""Image files on disk: atomic writes, removal, and clean-up after a crash."""

import errno
import os
import pathlib
import shutil
import socket
import stat
import time
import uuid

# NOTE: Temporary files name their host and process, so that clean-up at
#   start-up can tell a dead writer's leftovers from a live one's work.
_HOST = socket.gethostname().replace('.', '_') or 'localhost'


def write_atomically(
    path: pathlib.Path, data: bytes, root: pathlib.Path | None = None
) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing.

    The bytes go to a temporary file beside ``path``, are fsynced, and the
    file is renamed into place (and the directory fsynced); on any failure
    the temporary file is removed. Directories between ``root`` and ``path``
    are made as needed; ``root`` itself never is (a storage directory that
    vanished, an unmounted share, is an error, not something to recreate).
    """
    if root is not None:
        for directory in reversed(path.relative_to(root).parents[:-1]):
            (root / directory).mkdir(exist_ok=True)
    temp_path = path.with_name(temporary_name(path.name))
    try:
        with open(temp_path, 'xb') as output:
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def temporary_name(name: str) -> str:
    """A hidden name for a file in the making (or the unmaking)."""
    return f'.{name}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex}.tmp'


def regular_size(status: os.stat_result) -> int:
    """The size of a regular file; an error for anything else (a directory
    where an image should be is storage tampered with)."""
    if not stat.S_ISREG(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, 'Not a regular file')
    return status.st_size


def set_aside(path: pathlib.Path, tomb: pathlib.Path) -> None:
    """Rename the regular file ``path`` to ``tomb``; an error for anything else."""
    regular_size(path.stat())
    os.replace(path, tomb)


def remove(path: pathlib.Path) -> None:
    path.unlink(missing_ok=True)


def remove_tree(path: pathlib.Path) -> None:
    """Remove a file, or a directory and all in it; what is gone is no error."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        remove(path)


def derived_dirs(directory: pathlib.Path) -> list[pathlib.Path]:
    """The per-image directories of derived images (named by the image's id)."""
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    return [path for path in entries if path.is_dir() and is_image_name(path.name)]


def leftovers(
    directory: pathlib.Path, grace: float
) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """What a crash may have left in ``directory``.

    Returns the temporary files to remove (their writer is dead, or they were
    last changed over ``grace`` seconds ago) with the readiness check's
    leftovers older than that, and the image files (by a UUID)
    older than ``grace``, which are orphans unless the index knows them.
    """
    dead, old = [], []
    cutoff = time.time() - grace
    for path in directory.iterdir():
        status = _status(path)
        # NOTE: Only regular files this service could have written: never a
        #   directory (lost+found), a link, or a file of anyone else's.
        if status is None or not stat.S_ISREG(status.st_mode):
            continue
        if path.name.startswith('.') and path.name.endswith('.tmp'):
            # NOTE: The inode's change time: a file set aside by a delete keeps
            #   its old modification time, but its rename is recent.
            if status.st_ctime < cutoff or _writer_is_dead(path.name):
                dead.append(path)
        elif status.st_mtime < cutoff and is_image_name(path.name):
            old.append(path)
        elif status.st_mtime < cutoff and is_probe_name(path.name):
            dead.append(path)
    return dead, old


def _status(path: pathlib.Path) -> os.stat_result | None:
    # NOTE: Other processes rename their temporary files away all the time.
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


# NOTE: The readiness check's writes. Never an image's name: a probe that a
#   storage outage kept (its PUT landed after the check gave up) is swept as
#   unfinished, not counted with the orphans that make the sweep wary.
PROBE_PREFIX = 'readyz-probe-'


def probe_name() -> str:
    """A fresh name for the readiness check's write."""
    return f'{PROBE_PREFIX}{uuid.uuid4()}'


def is_probe_name(name: str) -> bool:
    return name.startswith(PROBE_PREFIX) and is_image_name(
        name.removeprefix(PROBE_PREFIX)
    )


def is_image_name(name: str) -> bool:
    """Whether ``name`` is an image's id: a UUID in its canonical form."""
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _writer_is_dead(name: str) -> bool:
    parts = name.split('.')
    if len(parts) < 6 or parts[-4] != _HOST or not parts[-3].isdigit():
        return False
    try:
        os.kill(int(parts[-3]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def _fsync_directory(path: pathlib.Path) -> None:
    # NOTE: The rename is only durable once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def implausible_orphans(orphans: int, old: int, most: int) -> bool:
    """Whether ``orphans`` of the ``old`` files look less like what crashes
    left than like an index that is not this storage's (a new database, a
    mistyped URL, a host that lost its setting): more than ``most`` and a
    twentieth of them, or every one of them."""
    return orphans > max(most, old // 20) or 0 < orphans == old
