"""Writing files a user keeps, safely: atomic replacement, the user's file mode, one-line errors on a full disk, an
exclusive lock on a folder, and quiet stderr around noisy native calls.

    write_text_atomic(path, text)              # readers see the old file or the whole new one, never a part
    with atomic_path(path) as tmp:             # for writers that want a path (Keras' save_weights, h5py)
        model.save_weights(tmp)
    with FolderLock(run_dir):                  # one process per run folder; a second gets LockedError
        ...

Light on purpose (standard library only): the results store, the CLI and the training harness all use it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import gc
import json
import os
import secrets
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import ZooError

__all__ = ["WriteError", "LockedError", "write_text_atomic", "write_json_atomic", "atomic_path", "free_bytes",
           "require_free_space", "FolderLock", "quiet_stderr", "file_mode", "PARTIAL_PREFIX", "remove_partials"]

# Temporary files of an atomic write start with this, so a later start can recognise (and remove) what a killed
# process left behind. Keras insists that a weights file's name ends in .weights.h5, so the suffix stays.
PARTIAL_PREFIX = ".partial-"


class WriteError(ZooError, OSError):
    """A file could not be written (full disk, no permission); the message names the file and the free space."""


class LockedError(ZooError):
    """The folder is held by another live process."""


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def free_bytes(path: str | os.PathLike) -> Optional[int]:
    """Bytes free to an unprivileged writer on the file system of `path` (its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _write_error(path: Path, error: BaseException) -> WriteError:
    """`error` (an OSError, or h5py's RuntimeError wrapping one) as one line naming the file and the free space."""
    text = str(error).replace("\n", " ")
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC or "No space left" in text or "errno = 28" in text:
        reason = "no space left on the device"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = os.strerror(code).lower()
    else:
        reason = (getattr(error, "strerror", None) or text.split(" (")[0] or type(error).__name__).lower()
    free = free_bytes(path.parent)
    where = f"; {_size(free)} free there" if free is not None else ""
    return WriteError(f"cannot write {path}: {reason}{where}")


def require_free_space(path: str | os.PathLike, needed: int) -> None:
    """Refuse (WriteError) to start writing about `needed` bytes at `path` when the file system has less free:
    HDF5 does not survive a full disk gracefully (half-closed handles, tracebacks at exit, even crashes)."""
    path = Path(path)
    free = free_bytes(path.parent)
    margin = needed // 10 + (1 << 20)  # HDF5's metadata and a little room for the small files that follow
    if free is not None and free < needed + margin:
        raise WriteError(f"cannot write {path}: it needs about {_size(needed + margin)} and only {_size(free)} "
                         f"is free there")


def file_mode() -> int:
    """The mode a plain new file gets under the user's umask (tempfile.mkstemp would leave 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (the directory entry), where the OS allows opening a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-{path.name}")


@contextlib.contextmanager
def _quiet_unraisable():
    """h5py reports failed flushes of a half-written file from its destructors ('Exception ignored in ...'):
    the error is already raised to the caller, so those echoes are dropped."""
    saved = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        sys.unraisablehook = saved


def _discard_open_hdf5(path: Path) -> None:
    """Point HDF5's descriptor of a half-written `path` at an anonymous in-memory file. After a failed write
    (ENOSPC) HDF5 still holds the file with unflushed metadata: every later attempt to close it (h5py's
    destructors, the library's exit) fails again, prints a traceback from the destructor and can crash the
    process at exit. Writing into memory instead, the close succeeds, silently, and the file is dropped anyway."""
    h5py = sys.modules.get("h5py")  # only a writer that used h5py can have left one open
    if h5py is None:
        return
    target = os.path.abspath(path)
    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            if os.path.abspath(os.fsdecode(file_id.name)) != target:
                continue
            handle = file_id.get_vfd_handle()  # the POSIX descriptor of HDF5's default (sec2) driver
        except Exception:  # noqa: BLE001 - another driver, or an id closed meanwhile: nothing to redirect
            continue
        memory = _anonymous_file()
        try:
            os.dup2(memory, handle)
        finally:
            os.close(memory)


def _anonymous_file() -> int:
    """A descriptor of a file in memory (Linux' memfd), else of an unlinked temporary file."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("zoo-discarded-write")
    import tempfile

    fd, name = tempfile.mkstemp()
    os.unlink(name)
    return fd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, needed: Optional[int] = None) -> Iterator[Path]:
    """A temporary path beside `path` (same folder, same file system, same suffix) to write to; on success it is
    flushed to disk, given the user's file mode and renamed over `path`; on any failure it is removed and `path`
    is left as it was. `needed`: refuse first when the disk has less free space than that. OSErrors become one
    WriteError line naming `path` and the free space."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(path, e) from None
    if needed is not None:
        require_free_space(path, needed)
    tmp = _temporary_name(path)
    try:
        with _quiet_unraisable():
            try:
                yield tmp
            except BaseException as e:
                # The writer's frames (in the traceback) hold its h5py file open: let go of them now, and close
                # any handle the writer left to its destructor here, inside the quiet window, not long after. Only
                # on failure: a writer that succeeded closed its file, and a collection costs ~0.4 s once
                # TensorFlow is loaded (it dominated `zoo explain`'s many small writes).
                _discard_open_hdf5(tmp)
                traceback.clear_frames(e.__traceback__)
                gc.collect()
                raise
        os.chmod(tmp, file_mode())
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except (OSError, RuntimeError) as e:
        _remove_quietly(tmp)
        if isinstance(e, WriteError):
            raise
        if isinstance(e, RuntimeError) and "write" not in str(e) and "errno" not in str(e):
            raise
        raise _write_error(path, e) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write(text)
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """`data` as indented JSON, written atomically (see write_text_atomic)."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def remove_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files killed writers left in `folder` (call it while holding the folder's lock)."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if path.name.startswith(PARTIAL_PREFIX) or path.name.startswith("partial-"):  # the old naming too
            _remove_quietly(path)
            removed.append(path)
    return removed


class FolderLock:
    """An exclusive OS lock (fcntl.flock) on `folder/.lock`, held until release() or the process ends (the
    kernel drops it even after SIGKILL, so a dead run never blocks its folder). The file records who holds it."""

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self._fd: Optional[int] = None

    def acquire(self) -> "FolderLock":
        import fcntl

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, file_mode())
        except OSError as e:
            raise _write_error(self.path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise LockedError(f"{self.folder} is in use by {holder}; wait for it to finish or choose another "
                              f"--output") from None
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {now}\n".encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        return text or "another process"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (not just sys.stderr) for a moment: TensorFlow's and CUDA's C++ start-up lines
    ('failed call to cuInit', 'oneDNN custom operations are on') are printed before absl logging reads
    TF_CPP_MIN_LOG_LEVEL, straight to the descriptor."""
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real descriptor (a captured stream): nothing to silence
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), stderr_fd)
            yield
    finally:
        os.dup2(saved, stderr_fd)
        os.close(saved)
