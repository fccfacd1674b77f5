"""Plumbing shared by training, the study and the data loaders: writing files safely, loading a
data set from a recorded source, turning signals into Ctrl-C, and user errors.

    atomic_write("runs/a/checkpoint.npz", lambda file: np.savez(file, **arrays))
    remove_leftovers("runs/a")                 # temporary files of writers that were killed
    with locked("runs/study/results.csv"):     # one writer at a time, across processes
        ...
    data = load_data(dict(name="shapes", subset=[64, 32]))
    with sigterm_as_ctrl_c(), interrupts_held():
        ...                                    # Ctrl-C or `kill PID` wait until the block is done

Atomic writes. A file is written to a temporary file in the same folder, flushed to disk, and
then renamed onto its name in one ``os.replace``. Readers see the old file or the new one, never
half of one; a full disk or a crash keeps the old file. The temporary file is named
``.tmp-HOST-PID-*`` so that a later start can remove those of writers that died (kill -9), and
only those: a live writer's file, or one of another machine on a shared disk, is left alone.
"""

import contextlib
import fcntl
import os
import signal
import socket
import tempfile
import threading

TEMPORARY_PREFIX = ".tmp-"


class UserError(Exception):
    """A mistake in what the user asked for (a flag, a path, a file): the command line prints
    ``error: <message>`` and exits with status 2, without a traceback."""


@contextlib.contextmanager
def blame(argument):
    """Turn the ValueError, FileNotFoundError, ... raised in the block into a UserError that names
    ``argument`` (e.g. "--data-dir"): the library's message says what was expected."""
    try:
        yield
    except UserError:
        raise
    except (ValueError, KeyError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise UserError(f"{argument}: {message}") from error


# ---- files ----
def atomic_write(path, write, *, binary=True):
    """Call ``write(file)`` on a temporary file next to ``path``, then move it onto ``path``.

    Inputs:
    - path: the file to (re)write; its folder is created if needed
    - write: a function of the open file object
    - binary: open the temporary file as bytes (else as text, with newline="")
    The new file has the permissions a plain ``open`` would give (0666 minus the umask), so that
    teammates can read results on a shared folder (``mkstemp`` alone makes them 0600). If
    ``write`` or the disk fails, the temporary file is removed, ``path`` is untouched and the
    error (e.g. OSError "No space left on device") goes to the caller.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_leftovers(directory)  # a killed writer's files would only take the space we need
    prefix = f"{TEMPORARY_PREFIX}{socket.gethostname()}-{os.getpid()}-"
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=prefix,
                                             suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(descriptor, "wb" if binary else "w", **({} if binary else dict(newline=""))) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them visible
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException as error:  # also KeyboardInterrupt: never leave the temporary file behind
        os.unlink(temporary)
        if isinstance(error, OSError) and error.errno is not None and error.filename is None:
            error.filename = path  # "No space left on device" alone does not say where
        raise


def remove_leftovers(directory):
    """Remove the temporary files that writers on this machine left in ``directory`` when they
    were killed mid-write (their process no longer exists). Returns the removed names."""
    host = socket.gethostname()
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            if not name.startswith(f"{TEMPORARY_PREFIX}{host}-"):
                continue
            pid = name[len(f"{TEMPORARY_PREFIX}{host}-"):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))
                removed.append(name)
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def current_umask():
    """The process's umask (read without changing it where /proc allows)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable_folder(path, argument):
    """Raise a UserError naming ``argument`` unless ``path`` is a writable folder or can be made
    one: a file in the way or a read-only disk is found now, before any training, not an epoch
    later. Nothing is created."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):  # the folder is made later, inside its nearest ancestor
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "is a file" if existing == os.path.abspath(path) else f"is inside the file {existing}"
        raise UserError(f"{argument}: {path} {what}; expected a folder (existing or new)")
    try:
        if not os.access(existing, os.W_OK | os.X_OK):  # also False on a read-only file system
            raise PermissionError(13, "permission denied or read-only")
        with tempfile.TemporaryFile(dir=existing, prefix=TEMPORARY_PREFIX) as file:
            file.write(b"ok")
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        raise UserError(f"{argument}: cannot write to the folder {existing} "
                        f"({error.strerror or error})") from error


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on ``path + ".lock"`` for the block: one process at a time (on this
    machine, or on a shared disk whose file system supports ``flock``)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    descriptor = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


# ---- data ----
def load_data(source):
    """Load a data set from the keyword arguments of ``tinyinvo.data.load`` recorded with a run
    (a checkpoint's config, a study's Run): ``dict(name="cifar10", data_dir=..., subset=...)``."""
    from tinyinvo.data import load  # here: the data loaders import this module for atomic_write

    if source is None:
        raise ValueError("this checkpoint does not record how its data was loaded (it was trained "
                         "on a Dataset made in Python): pass the data explicitly (--data NAME)")
    source = dict(source)
    if isinstance(source.get("subset"), list):  # JSON stores the (n_train, n_test) tuple as a list
        source["subset"] = tuple(source["subset"])
    return load(source.pop("name"), **source)


def load_requested_data(source):
    """``load_data(source)`` for data named on the command line: a failure is the user's, a
    UserError naming --data-dir (a missing or unreadable copy) or --subset (larger than the data)."""
    try:
        return load_data(source)
    except OSError as error:
        raise UserError(f"{'--data-dir' if source.get('data_dir') else '--data'}: {error}") \
            from error
    except ValueError as error:
        raise UserError(f"{'--subset' if source.get('subset') else '--data'}: {error}") from error


# ---- signals ----
@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Let ``kill PID`` (SIGTERM) stop the block as Ctrl-C does (KeyboardInterrupt).

    A run started in the background by a script (``... &``) ignores SIGINT, and SIGTERM is how
    background and batch jobs are stopped. Main thread only (where handlers can be set).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_held():
    """Hold back Ctrl-C (SIGINT), and SIGTERM where it means the same, until the block is done,
    then raise KeyboardInterrupt.

    Only signals that would raise KeyboardInterrupt anyway (Python's default SIGINT handler, which
    Jupyter uses too; ``sigterm_as_ctrl_c`` gives SIGTERM the same handler) and only in the main
    thread (the only one that may set signal handlers); elsewhere the block runs as it is.
    """
    held = [] if threading.current_thread() is not threading.main_thread() else [
        signum for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) is signal.default_int_handler]
    received = []
    previous = {signum: signal.signal(signum, lambda number, frame: received.append(number))
                for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt
