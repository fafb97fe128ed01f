"""The master of ``--processes M``: forks the worker processes and keeps M of them alive.

In the style of gunicorn's arbiter: one flat loop that waits for a signal or a
timeout, dispatches the signals the handlers queued, reaps dead workers and brings
their number back to the target. The master holds no database connection: the pools
are closed before every fork (``mysqlpool.fork()``), and the master never queries.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Collection, Iterator
from types import FrameType

from mysqlpool.daemon.exits import EXIT_BOOT_FAILED, EXIT_CUT_SHORT, EXIT_STOPPED, WorkersKeepFailing
from mysqlpool.daemon.health import verdict
from mysqlpool.daemon.logfile import reopen_log_files
from mysqlpool.daemon.metrics_server import MetricsServer
from mysqlpool.daemon.reports import Report, Reporter, Reports
from mysqlpool.daemon.stops import STOP_SIGNALS, Arrival, StopRequests
from mysqlpool.daemon.systemd import Watchdog, notify
from mysqlpool.forking import fork

logger = logging.getLogger("mysqlpool.daemon")

# A worker is up once it has lived this long. One that fails before (a non-zero
# exit status) counts as failing at boot too; this many in a row and the master
# gives up. Exiting 0 is never a failure (--max-jobs recycles quick workers soon),
# nor is a death by a signal.
QUICK_DEATH = 1.0
MAX_QUICK_DEATHS = 5
MAX_RESPAWN_BACKOFF = 10.0


# SIGTTIN adds a worker and SIGTTOU removes one, as gunicorn's arbiter does.
RESIZES = (signal.SIGTTIN, signal.SIGTTOU)
_HANDLED = (*STOP_SIGNALS, signal.SIGHUP, signal.SIGCHLD, *RESIZES)


class Supervisor:
    """Keeps ``processes`` workers running ``run_worker`` (which returns an exit status).

    ``run()`` unblocks the signals it handles once its handlers are in place (they
    may be blocked until then). ``run_worker`` starts with SIGTERM, SIGINT and
    SIGHUP blocked: it installs its handlers, then unblocks them.
    """

    def __init__(
        self,
        processes: int,
        run_worker: Callable[[Reporter | None], int],
        graceful_timeout: float,
        *,
        server: MetricsServer | None = None,
        unit_timeout: float | None = None,
    ) -> None:
        self.processes = processes
        self.run_worker = run_worker
        self.graceful_timeout = graceful_timeout
        self.server = server
        self.unit_timeout = unit_timeout
        self.workers: dict[int, float] = {}  # pid -> start time
        # Workers told to stop (SIGTTOU, or hung): pid -> when they get SIGKILL.
        self._retiring: dict[int, float] = {}
        self._hung: set[int] = set()
        # Workers started again, by the cause of the end of the one replaced.
        self.restarts: dict[str, int] = {}
        # The workers report their metrics and stalls when someone reads them.
        self._reports = Reports() if server is not None or unit_timeout is not None else None
        self._signals: list[int] = []
        self._stops = StopRequests()
        self._quick_deaths = 0
        self._stopping = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; return the master's exit status."""
        for signum in _HANDLED:
            signal.signal(signum, self._queue_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        watchdog = Watchdog()
        try:
            self._spawn_missing()
            notify("READY=1")
            while not self._stopping:
                self._sleep(1.0)
                self._dispatch_signals()
                self._reap()
                self._watch_workers()
                self._spawn_missing()
                if self.health() is None:  # as /healthz: systemd restarts a daemon that no longer works
                    watchdog.ping_if_due()
        except WorkersKeepFailing as error:
            logger.error("%s", error)
            self._stop_workers()
            return error.status
        finally:
            notify("STOPPING=1")
        return self._stop_workers()

    def _queue_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only record it: the loop does the work. A stop signal after the first is
        # queued no more: it repeats the first, or asks again (_stop_workers() reads
        # that from self._stops), and only wakes the loop.
        if signum not in STOP_SIGNALS or self._stops.arrived(signum) is Arrival.FIRST:
            self._signals.append(signum)
        try:
            os.write(self._wake_write, b".")
        except BlockingIOError:
            pass

    def _sleep(self, timeout: float) -> None:
        """Wait for a signal or ``timeout``, answering the metrics endpoint meanwhile."""
        deadline = time.monotonic() + timeout
        listening = [self._wake_read] if self.server is None else [self._wake_read, self.server.fileno()]
        while True:
            try:
                ready = select.select(listening, [], [], max(deadline - time.monotonic(), 0))[0]
            except InterruptedError:
                return
            if self._wake_read in ready:
                os.read(self._wake_read, 4096)
                return
            if not ready:
                return
            self._answer()

    def _answer(self) -> None:
        assert self.server is not None
        if self._reports is not None:
            self._reports.receive()
        self.server.handle_pending()

    def _dispatch_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum in STOP_SIGNALS:
                logger.info("Master got %s: stopping the workers", signal.Signals(signum).name)
                self._stopping = True
            elif signum == signal.SIGHUP:
                reopen_log_files()
                for pid in self.workers:
                    _signal(pid, signal.SIGHUP)
            elif signum in RESIZES:
                self._resize(1 if signum == signal.SIGTTIN else -1)

    def _resize(self, change: int) -> None:
        if self.processes + change < 1:
            logger.warning("Master got SIGTTOU with 1 worker process: keeping it")
            return
        self.processes += change
        logger.info(
            "Master got %s: %d worker process%s from now on",
            "SIGTTIN" if change > 0 else "SIGTTOU",
            self.processes,
            "" if self.processes == 1 else "es",
        )
        active = self._active()
        if change < 0 and active:  # (none while all are being replaced: one fewer is spawned)
            # The oldest goes, as with gunicorn: its memory has grown the most.
            self._retire(min(active, key=self.workers.__getitem__))

    def _active(self) -> list[int]:
        """The workers not told to stop."""
        return [pid for pid in self.workers if pid not in self._retiring]

    def live_workers(self) -> int:
        return len(self._active())

    def reports(self) -> dict[int, Report]:
        return {} if self._reports is None else dict(self._reports.last)

    def _retire(self, pid: int) -> None:
        """Stop a worker gracefully: SIGTERM now, SIGKILL after the graceful timeout (and a second)."""
        self._retiring[pid] = time.monotonic() + self.graceful_timeout + 1.0
        _signal(pid, signal.SIGTERM)

    def _watch_workers(self) -> None:
        """Recycle the hung workers; kill those retired that outstay their graceful timeout."""
        now = time.monotonic()
        if self._reports is not None:
            self._reports.receive()
        if self.unit_timeout is not None:
            for pid in self._active():
                if self._stalled_for(pid, now) > self.unit_timeout:
                    logger.error(
                        "Worker %d started or finished no unit for --unit-timeout %gs: recycling it",
                        pid,
                        self.unit_timeout,
                    )
                    self._hung.add(pid)
                    self._retire(pid)
        for pid, kill_at in list(self._retiring.items()):
            if now > kill_at:
                logger.error("Worker %d still running after the graceful timeout: killing it", pid)
                _signal(pid, signal.SIGKILL)
                self._retiring[pid] = math.inf

    def _stalled_for(self, pid: int, now: float) -> float:
        """How long the worker's threads have all been stuck, by its last report; a
        worker whose reports stopped counts as stuck since its last."""
        assert self._reports is not None
        report = self._reports.last.get(pid)
        if report is None or not report.metrics:  # still starting: no unit yet
            return 0.0
        return max(report.stalled, now - report.received - 1.0)

    def health(self) -> str | None:
        """Why the daemon is unhealthy (see mysqlpool.daemon.health), or None."""
        now = time.monotonic()
        active = self._active()
        stalled = [self._stalled_for(pid, now) for pid in active] if self._reports else []
        # Failing while none of the workers has lived past a quick death (none runs
        # while the master waits to respawn one): one that failed once, long ago,
        # among others that run, is no reason.
        keep_failing = self._quick_deaths > 0 and all(now - self.workers[pid] < QUICK_DEATH for pid in active)
        return verdict(len(active), keep_failing, stalled, self.unit_timeout)

    def _spawn_missing(self) -> None:
        while self.live_workers() < self.processes and not self._stopping:
            # A signal that arrived between the fork and the child's own handlers
            # would run the master's handler in the child, and be lost: block them
            # over the fork. The master then gets its pending ones; the child gets
            # its own once its handlers are in place (see _become_worker()).
            ends = self._reports.channel() if self._reports is not None else None
            signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
            try:
                pid = fork()
                if pid == 0:  # the child always ends here, never in the master's code
                    self._become_worker(ends)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
            self.workers[pid] = time.monotonic()
            if ends is not None:
                ends[1].close()
                self._reports.add(pid, ends[0])  # type: ignore[union-attr]  # ends come from it
            logger.info("Started worker %d", pid)

    def _become_worker(self, ends: tuple[socket.socket, socket.socket] | None) -> None:
        status = 1
        try:
            os.close(self._wake_read)
            os.close(self._wake_write)
            reporter = None
            if self.server is not None:
                self.server.close()
            if ends is not None:
                ends[0].close()
                self._reports.close_in_child()  # type: ignore[union-attr]  # ends come from it
                reporter = Reporter(ends[1])
            for signum in _HANDLED:
                signal.signal(signum, signal.SIG_DFL)
            # A resize sent to the whole process group is the master's business.
            for signum in RESIZES:
                signal.signal(signum, signal.SIG_IGN)
            # SIGHUP's default action would end the worker: a reload sent at the
            # wrong moment must not. The worker's signals stay blocked (pending,
            # not lost) until run_worker() has its handlers in place and unblocks them.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            status = self.run_worker(reporter)
        finally:
            logging.shutdown()
            os._exit(status)

    def _reap(self) -> None:
        for pid, started, code in self._ended_workers():
            retired = self._retiring.pop(pid, None) is not None
            if pid in self._hung:
                self._hung.discard(pid)
                self._count_restart("hung")
                logger.warning("Hung worker %d exited with %d; replaced", pid, code)
            elif retired:
                logger.info("Worker %d exited with %d: one fewer worker process", pid, code)
            else:
                self._count_restart("recycled" if code == 0 else "failed" if code > 0 else "killed")
                self._judge_death(pid, code, time.monotonic() - started)

    def _ended_workers(self) -> Iterator[tuple[int, float, int]]:
        """The workers that ended since asked last, forgotten here: pid, start time, exit status."""
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # no child left: the workers listed are gone
                self.workers.clear()
                return
            if pid == 0:
                return
            started = self.workers.pop(pid, None)
            if started is None:
                continue
            if self._reports is not None:
                self._reports.forget(pid)
            yield pid, started, os.waitstatus_to_exitcode(status)

    def _count_restart(self, cause: str) -> None:
        self.restarts[cause] = self.restarts.get(cause, 0) + 1

    def _judge_death(self, pid: int, code: int, lived: float) -> None:
        if self._stopping:
            return
        if code == EXIT_BOOT_FAILED:
            raise WorkersKeepFailing(
                f"Worker {pid} failed at boot (exit {code}); not respawning: see its error above.", code
            )
        # A worker killed by a signal was killed from outside (an operator, the
        # OOM killer): respawned at once, it is no reason to give up.
        if code > 0 and lived < QUICK_DEATH:
            self._quick_deaths += 1
            if self._quick_deaths >= MAX_QUICK_DEATHS:
                raise WorkersKeepFailing(
                    f"Workers failed within {QUICK_DEATH}s of their start {self._quick_deaths} times in a "
                    "row; not respawning.",
                    EXIT_CUT_SHORT,
                )
            backoff = min(0.1 * 2**self._quick_deaths, MAX_RESPAWN_BACKOFF)
            logger.warning(
                "Worker %d exited with %d after %.2fs; respawning in %.1fs", pid, code, lived, backoff
            )
            self._sleep(backoff)
        else:
            self._quick_deaths = 0
            level = logging.INFO if code == 0 else logging.WARNING
            logger.log(level, "Worker %d exited with %d after %.1fs; respawning", pid, code, lived)

    def _stop_workers(self) -> int:
        """TERM every worker and wait for them; KILL those left after the graceful timeout
        (and a second, in which a worker ends by itself, saying why), or at once when
        asked again (see ``stops``). EXIT_CUT_SHORT unless every worker stopped cleanly."""
        for pid in self.workers:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + 1.0
        unclean, asked_again = 0, False
        while self.workers and time.monotonic() < deadline and not asked_again:
            unclean += self._reap_stopping()
            self._sleep(0.05)
            asked_again = self._asked_to_stop_again()
        killed = list(self.workers)
        for pid in killed:
            if not asked_again:
                logger.error("Worker %d still running after the graceful timeout: killing it", pid)
            _signal(pid, signal.SIGKILL)
        while self.workers:
            self._reap_stopping(killed)
            self._sleep(0.01)
        return EXIT_CUT_SHORT if killed or unclean else EXIT_STOPPED

    def _asked_to_stop_again(self) -> bool:
        """Whether a second stop request came (logged); not a first one, which may come
        while the master stops by itself (its workers failing at boot)."""
        again = self._stops.again
        if again is None:
            return False
        logger.warning("Master got %s again: killing the workers", signal.Signals(again).name)
        return True

    def _reap_stopping(self, killed: Collection[int] = ()) -> int:
        """Reap the workers that ended; how many of those not ``killed`` did not stop cleanly."""
        unclean = 0
        for pid, _, code in self._ended_workers():
            if code != EXIT_STOPPED and pid not in killed:
                logger.error("Worker %d exited with %d while stopping", pid, code)
                unclean += 1
        return unclean


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError as error:
        if error.errno != errno.ESRCH:
            raise
