"""The threads and connections behind a SQLite store.

Blocking SQLite calls never run on an event loop:

* **Writes** go to one writer thread per store, which owns the only write connection. It takes
  every job waiting in its queue and runs them in one ``BEGIN IMMEDIATE`` transaction (each job
  in its own savepoint, so one failing job does not undo the others) and commits once: many
  sessions writing at the same time share one fsync (group commit). A job's caller hears back
  only after the commit.
* **Reads** of a file database run on a small pool of reader threads, each with its own
  connection, each read inside one transaction so it sees one consistent snapshot (WAL lets
  readers and the writer proceed together). A ``:memory:`` database has a single connection,
  so there the writer thread runs the reads too.
* ``database is locked`` from another process is retried with back-off (on top of SQLite's
  own busy timeout) until ``lock_timeout``; only then does a :class:`SessionError` surface.
* A write may be *durable soon* (``durable="soon"``): it commits without waiting for an
  fsync, its caller hears back at once, and the writer thread fsyncs the WAL right after
  (before it takes the next group), unless that group's own commit does it. A run's input is
  written so: stored before the model is called, on disk while the model works, and before
  any later durable commit is acknowledged.
* Heartbeats (used by the writer lease) run on the writer thread at their interval.
* Idle jobs (the search index's catch-up) run on the writer thread once it has had no work
  for a moment, so a burst of writes is never slowed down by them.
* WAL checkpoints (copying the log into the database file) run on a reader thread, which
  the writer asks for at its next quiet moment once :data:`CHECKPOINT_CHANGES` rows changed
  since the last one; a commit checkpoints by itself only past :data:`WAL_AUTOCHECKPOINT`
  pages of log (instead of SQLite's 1,000). So a commit waits for its own fsync, but neither
  it nor the next write waits for a checkpoint (a ``PASSIVE`` one lets writers go on).
  Durability is the WAL's either way.
* ``os.fork()`` waits for a write group in flight to finish and holds new ones back until the
  fork is done (``os.register_at_fork``), so a child never inherits a transaction or a lock
  taken half-way; the child then starts threads and connections of its own on first use.

Jobs are plain functions of a connection; they never begin or end transactions themselves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Literal, TypeVar

from ...errors import SessionError, ThreadlineError
from ._schema import migrate

__all__ = ["Durability", "SQLiteEngine"]

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

logger = logging.getLogger("threadline.sessions")

_MAX_GROUP = 256
_IDLE_EXIT = 30.0  # seconds without work after which the writer thread leaves
_IDLE_JOB_DELAY = 0.05  # seconds without work before idle jobs run
WAL_AUTOCHECKPOINT = 16_384
"""Pages (64 MiB at 4 KiB) past which a commit checkpoints the WAL itself."""
CHECKPOINT_CHANGES = 500
"""Rows changed after which the writer asks for a checkpoint at its next quiet moment."""
_STOP = object()
_SYNCING = ("FULL", "EXTRA")  # the synchronous levels that fsync the WAL at each commit
_FORK_GRAVEYARD: list[sqlite3.Connection] = []  # a parent's connections, inherited by a fork
_WAKE = object()


Durability = bool | Literal["soon"]
"""``True``: fsynced before the caller hears back; ``"soon"``: fsynced right after; ``False``:
bookkeeping, fsynced by the next durable commit."""


class _Pending:
    __slots__ = ("durable", "fn", "future")

    def __init__(self, fn: Job, durable: Durability = True) -> None:
        self.fn = fn
        self.durable = durable
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()


class _Heartbeat:
    __slots__ = ("due", "fn", "interval", "on_stop")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], bool],
        interval: float,
        on_stop: Callable[[], None] | None,
    ) -> None:
        self.fn = fn
        self.interval = interval
        self.on_stop = on_stop
        self.due = time.monotonic() + interval


def _is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    message = str(exc)
    return "database is locked" in message or "database table is locked" in message


_ENGINES: weakref.WeakSet[SQLiteEngine] = weakref.WeakSet()


def _before_fork() -> None:
    """Wait for write groups in flight and take every engine's locks, so that a child process
    inherits no transaction half-done and no lock held by a thread it does not have."""
    me = threading.current_thread()
    for engine in list(_ENGINES):
        if engine._writer is me:  # a job forking from the writer thread itself
            continue
        engine._fork_gate.acquire()
        engine._state_lock.acquire()
        engine._held_for_fork = True


def _after_fork() -> None:
    for engine in list(_ENGINES):
        if getattr(engine, "_held_for_fork", False):
            engine._held_for_fork = False
            engine._state_lock.release()
            engine._fork_gate.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )


class SQLiteEngine:
    """Owns the connections and threads of one SQLite database file (or ``:memory:``)."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str,
        busy_timeout: float,
        lock_timeout: float,
        readers: int,
    ) -> None:
        self.path = path
        self.memory = path == ":memory:"
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.lock_timeout = lock_timeout
        self.readers = readers
        self.on_create: Callable[[sqlite3.Connection], None] | None = None
        self.sdk_tables: frozenset[str] | None = None  # the SDK tables a file may hold
        """Runs in the transaction that creates the schema (set by the store)."""
        self._state_lock = threading.Lock()
        self._fork_gate = threading.Lock()  # held by the writer while a group runs
        self._held_for_fork = False
        self._closed = False
        self._ready = False
        self._reset_threads()
        _ENGINES.add(self)

    def _reset_threads(self) -> None:
        # Also used in a child process after fork: the parent's threads do not exist there and
        # its connections must not be used or closed there, so they are kept out of reach.
        inherited: sqlite3.Connection | None = getattr(self, "_write_conn", None)
        if inherited is not None:
            _FORK_GRAVEYARD.append(inherited)
        _FORK_GRAVEYARD.extend(getattr(self, "_reader_conns", ()))
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._reader_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._heartbeats: dict[Hashable, _Heartbeat] = {}
        self._idle_jobs: dict[Hashable, Job] = {}
        self._checkpoint_due = False
        self._unsynced = False  # a "soon" write committed whose fsync is still to come
        self._changes_checkpointed = 0  # the write connection's total_changes at the last one

    @property
    def where(self) -> str:
        """How error messages name this database."""
        return "':memory:'" if self.memory else repr(self.path)

    # ----------------------------------------------------------------- public interface

    def submit_write(
        self, fn: Job, *, durable: Durability = True
    ) -> concurrent.futures.Future[Any]:
        """Queue ``fn`` for the writer thread; the future resolves after the commit.

        ``durable=False`` is for bookkeeping whose loss in a power cut harms nothing (lease
        rows: a lost one expires by itself). When a commit carries only such writes, it is
        made with ``synchronous=NORMAL`` (no fsync; WAL keeps it consistent, and the next
        durable commit makes it durable too); any durable write in the group keeps the
        configured level. ``durable="soon"`` commits the same way but has the writer fsync
        the log as soon as the commit is reported (see the module docstring): visible at
        once and surviving a crash of the process, on disk a moment later.
        """
        job = _Pending(fn, durable)
        with self._state_lock:
            self._check_open()
            self._ensure_writer()
            self._queue.put(job)
        return job.future

    def _ensure_writer(self) -> None:
        # Called with _state_lock held.
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._writer_main, name="threadline-sqlite-writer", daemon=True
            )
            self._writer.start()

    async def write(
        self, fn: Callable[[sqlite3.Connection], T], *, durable: Durability = True
    ) -> T:
        """Run ``fn`` in a write transaction on the writer thread and return its result
        (``durable=False``: bookkeeping; ``"soon"``: fsynced right after; see
        :meth:`submit_write`)."""
        result: T = await asyncio.wrap_future(self.submit_write(fn, durable=durable))
        if not self._ready:
            self._ready = True
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], T], *, snapshot: bool = True) -> T:
        """Run ``fn`` off the event loop and return its result.

        With ``snapshot`` (the default) ``fn`` runs in one read transaction; without it each
        statement is its own, which saves two round trips for a single-statement read.
        """
        if self.memory:
            return await self.write(fn)
        if not self._ready:
            await self.write(_noop)  # opens the file and applies migrations first
        loop = asyncio.get_running_loop()
        with self._state_lock:
            self._check_open()
            pool = self._readers()
        result: T = await loop.run_in_executor(pool, self._run_read, fn, snapshot)
        return result

    def _readers(self) -> concurrent.futures.ThreadPoolExecutor:
        # Called with _state_lock held.
        if self._reader_pool is None:
            self._reader_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.readers, thread_name_prefix="threadline-sqlite-reader"
            )
        return self._reader_pool

    def add_heartbeat(
        self,
        key: Hashable,
        interval: float,
        fn: Callable[[sqlite3.Connection], bool],
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """Run ``fn`` on the writer thread every ``interval`` seconds until removed.

        When ``fn`` returns ``False`` (or raises) the heartbeat stops and ``on_stop`` is called
        on the writer thread (without one, a warning is logged).
        """
        with self._state_lock:
            self._check_open()
            self._heartbeats[key] = _Heartbeat(fn, interval, on_stop)
            self._ensure_writer()
            self._queue.put(_WAKE)

    def when_idle(self, key: Hashable, fn: Job) -> None:
        """Run ``fn`` (bookkeeping, committed without an fsync) on the writer thread once it
        has had no work for a moment; a job already waiting under ``key`` is replaced. Ignored
        once the engine is closed."""
        with self._state_lock:
            if self._closed or self._pid != os.getpid():
                return
            self._idle_jobs[key] = fn
            self._ensure_writer()
            self._queue.put(_WAKE)

    def remove_heartbeat(self, key: Hashable) -> None:
        """Stop the heartbeat registered under ``key`` (no error if there is none)."""
        with self._state_lock:
            self._heartbeats.pop(key, None)

    def close(self) -> None:
        """Finish queued writes, stop the threads and close every connection."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            forked = self._pid != os.getpid()
            writer, pool = self._writer, self._reader_pool
            self._heartbeats.clear()
            self._idle_jobs.clear()
        if forked:
            return
        if writer is not None:
            self._queue.put(_STOP)
            if writer is not threading.current_thread():
                writer.join()
        elif self._write_conn is not None:  # the writer thread had left while idle
            self._write_conn.close()
            self._write_conn = None
        if pool is not None:
            pool.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._reader_conns.clear()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # ----------------------------------------------------------------- connections

    def _check_open(self) -> None:
        if self._closed:
            raise SessionError(
                f"the session store {self.where} is closed: open a new SQLiteStore or SQLiteSession"
            )
        if self._pid != os.getpid():
            self._reset_threads()

    def _connect(self) -> sqlite3.Connection:
        if not self.memory and not os.path.exists(self.path):
            try:  # create the file ourselves so that it is private (0600) from the start
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            except OSError as exc:
                raise SessionError(
                    f"cannot create the session store {self.where}: {exc.strerror}; "
                    "check that the directory exists and is writable"
                ) from None
            else:
                os.close(fd)
        return sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            self._retry_busy(lambda: self._configure_writer(conn))
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure_writer(self, conn: sqlite3.Connection) -> None:
        if not self.memory:
            (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() != "wal":
                raise SessionError(
                    f"the session store {self.where} could not switch to WAL mode "
                    f"(journal_mode is {mode}); is it on a network file system?"
                )
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        self._current_synchronous = self.synchronous
        if not self.memory:
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT:d}")
        migrate(conn, self.where, self.on_create, self.sdk_tables)

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._state_lock:
                self._reader_conns.append(conn)
        return conn

    def _retry_busy(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.001
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _wrap(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            if _is_busy(exc):
                wrapped = SessionError(
                    f"the session store {self.where} stayed locked by another process for "
                    f"{self.lock_timeout:g} s: retry later or raise lock_timeout"
                )
            else:
                wrapped = SessionError(
                    f"the session store {self.where} failed: {exc}; check the file, its "
                    "permissions and the free disk space"
                )
            wrapped.__cause__ = exc
            return wrapped
        return exc

    # ----------------------------------------------------------------- reads

    def _run_read(self, fn: Callable[[sqlite3.Connection], T], snapshot: bool) -> T:
        try:
            conn = self._reader_conn()
            if not snapshot:
                return self._retry_busy(lambda: fn(conn))
            return self._retry_busy(lambda: self._read_once(conn, fn))
        except ThreadlineError:
            raise
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc

    @staticmethod
    def _read_once(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN")
        try:
            result = fn(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # ----------------------------------------------------------------- the writer thread

    def _writer_main(self) -> None:
        # The thread leaves after a while without work (and starts again on the next write),
        # so an unused store holds no thread and can be garbage collected. The connection
        # stays open: for ``:memory:`` it *is* the database.
        stopped = False
        try:
            while not stopped:
                timeout = self._next_heartbeat_in()
                idle_work = bool(self._idle_jobs) or self._checkpoint_due
                if idle_work:
                    timeout = _IDLE_JOB_DELAY if timeout is None else min(timeout, _IDLE_JOB_DELAY)
                try:
                    first = self._queue.get(timeout=_IDLE_EXIT if timeout is None else timeout)
                except queue.Empty:
                    if idle_work:
                        self._run_idle_jobs()
                        self._checkpoint()
                        continue
                    if timeout is None and self._leave_if_idle():
                        return
                    first = _WAKE
                batch = [first]
                while len(batch) < _MAX_GROUP:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stopped = any(entry is _STOP for entry in batch)
                self._run_group([entry for entry in batch if isinstance(entry, _Pending)])
                self._sync_log()
        finally:
            if stopped:
                if self._write_conn is not None:
                    self._write_conn.close()
                    self._write_conn = None
                self._fail_leftovers()
            else:  # leaving while idle, or dying: the next write starts a new thread
                with self._state_lock:
                    if self._writer is threading.current_thread():
                        self._writer = None

    def _run_idle_jobs(self) -> None:
        with self._state_lock:
            jobs, self._idle_jobs = list(self._idle_jobs.values()), {}
        pending = [_Pending(fn, durable=False) for fn in jobs]
        self._run_group(pending)
        for job in pending:
            if job.future.done() and job.future.exception() is not None:
                logger.warning(
                    "threadline: background work in %s failed: %s",
                    self.where,
                    job.future.exception(),
                )

    def _checkpoint(self) -> None:
        """Ask a reader thread to copy the WAL into the database file (called by the writer
        at a quiet moment; ``PASSIVE``: it waits for nobody, and what readers still need
        stays in the log for the next one)."""
        if not self._checkpoint_due:
            return
        self._checkpoint_due = False
        with self._state_lock:
            if self._closed or self._pid != os.getpid():
                return
            self._readers().submit(self._run_checkpoint)

    def _run_checkpoint(self) -> None:
        try:
            self._reader_conn().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # a later one, a commit past the threshold, or close does it
            logger.warning("threadline: checkpointing %s failed: %s", self.where, exc)

    def _leave_if_idle(self) -> bool:
        with self._state_lock:
            if (
                self._heartbeats
                or self._idle_jobs
                or self._checkpoint_due
                or not self._queue.empty()
            ):
                return False
            self._writer = None
            return True

    def _fail_leftovers(self) -> None:
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(entry, _Pending) and entry.future.set_running_or_notify_cancel():
                entry.future.set_exception(
                    SessionError(f"the session store {self.where} was closed before this write")
                )

    def _next_heartbeat_in(self) -> float | None:
        with self._state_lock:
            if not self._heartbeats:
                return None
            soonest = min(beat.due for beat in self._heartbeats.values())
        return max(0.0, soonest - time.monotonic())

    def _due_heartbeats(self) -> list[tuple[Hashable, _Heartbeat]]:
        now = time.monotonic()
        with self._state_lock:
            due = [(key, beat) for key, beat in self._heartbeats.items() if beat.due <= now]
            for _, beat in due:
                beat.due = now + beat.interval
        return due

    def _run_group(self, jobs: list[_Pending]) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        beats = self._due_heartbeats()
        if not live and not beats:
            return
        with self._fork_gate:
            self._run_group_unforked(live, beats)

    def _run_group_unforked(
        self, live: list[_Pending], beats: list[tuple[Hashable, _Heartbeat]]
    ) -> None:
        try:
            if self._write_conn is None:
                self._write_conn = self._open_writer()
            conn = self._write_conn
            outcomes = self._retry_busy(lambda: self._attempt(conn, live, beats))
        except BaseException as exc:
            error = self._wrap(exc)
            for job in live:
                job.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        for job, ok, value in outcomes:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _attempt(
        self,
        conn: sqlite3.Connection,
        jobs: list[_Pending],
        beats: list[tuple[Hashable, _Heartbeat]],
    ) -> list[tuple[_Pending, bool, Any]]:
        outcomes: list[tuple[_Pending, bool, Any]] = []
        soon = any(job.durable == "soon" for job in jobs)
        # (Windows cannot fsync a file opened read-only: there a "soon" group commits durably)
        durable = any(job.durable is True for job in jobs) or (soon and os.name == "nt")
        self._set_synchronous(conn, durable)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for key, beat in beats:
                if not self._in_savepoint(conn, beat.fn, False):
                    self.remove_heartbeat(key)
                    if beat.on_stop is not None:
                        beat.on_stop()
                    else:
                        logger.warning("threadline: a heartbeat in %s stopped: %s", self.where, key)
            alone = len(jobs) == 1 and not beats
            for job in jobs:
                if alone:
                    try:
                        outcomes.append((job, True, job.fn(conn)))
                    except Exception as exc:
                        if _is_busy(exc):
                            raise
                        conn.execute("ROLLBACK")
                        return [(job, False, self._wrap(exc))]
                else:
                    try:
                        outcomes.append((job, True, self._in_savepoint(conn, job.fn, None)))
                    except Exception as exc:
                        if _is_busy(exc):
                            raise
                        outcomes.append((job, False, self._wrap(exc)))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if self._commits_fsync():
            if durable:
                self._unsynced = False  # this commit's fsync covered every earlier one
            elif soon:
                self._unsynced = True
        changed = conn.total_changes - self._changes_checkpointed
        if changed < 0:  # a new connection (after os.fork), or the counter wrapped
            self._changes_checkpointed, changed = 0, conn.total_changes
        if not self.memory and changed >= CHECKPOINT_CHANGES:
            self._changes_checkpointed = conn.total_changes
            self._checkpoint_due = True
        return outcomes

    def _sync_log(self) -> None:
        """Fsync the WAL after a commit of "soon" writes (on the writer thread, so no later
        write of this store is acknowledged as durable before it is on disk)."""
        if not self._unsynced:
            return
        self._unsynced = False
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY)
        except FileNotFoundError:  # the log was checkpointed away: the database file has it
            return
        except OSError as exc:
            self._sync_failed(exc)
            return
        try:
            getattr(os, "fdatasync", os.fsync)(fd)
        except OSError as exc:
            self._sync_failed(exc)
        finally:
            os.close(fd)

    def _sync_failed(self, exc: OSError) -> None:
        # The next durable commit (the run's next step) fsyncs the same log and reports a
        # failing disk to its caller; until then the input is committed but maybe not on disk.
        logger.warning("threadline: flushing the log of %s failed: %s", self.where, exc)

    def _set_synchronous(self, conn: sqlite3.Connection, durable: bool) -> None:
        """Use the configured level for durable groups, at most NORMAL for bookkeeping."""
        wanted = self.synchronous
        if not durable and self._commits_fsync():
            wanted = "NORMAL"
        if getattr(self, "_current_synchronous", None) != wanted:
            conn.execute(f"PRAGMA synchronous={wanted}")
            self._current_synchronous = wanted

    def _commits_fsync(self) -> bool:
        """Whether a durable commit fsyncs here (a file, at a configured level that syncs
        the WAL at each commit): then bookkeeping and "soon" groups commit at NORMAL, and a
        "soon" group is followed by the writer's own fsync of the log."""
        return not self.memory and self.synchronous in _SYNCING

    @staticmethod
    def _in_savepoint(conn: sqlite3.Connection, fn: Job, failed: Any) -> Any:
        """Run ``fn`` in a savepoint; on error undo it and raise (or return ``failed``)."""
        conn.execute("SAVEPOINT job")
        try:
            result = fn(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            if failed is None or _is_busy(exc):
                raise
            return failed
        conn.execute("RELEASE job")
        return result


def _noop(conn: sqlite3.Connection) -> None:
    return None
