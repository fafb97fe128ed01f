"""``PooledDaemonCommand``: a Django management command that runs as a worker daemon.

A subclass provides the unit of work, ``handle_job()``; the base class runs it in
worker threads, each unit inside ``auto_close_db``, under a per-process connection
budget, and stops gracefully on SIGTERM or SIGINT: no new unit starts, the units in
flight finish, every connection is returned, and the process exits 0 within the
graceful timeout. A second signal exits at once; with worker processes, a second
signal to the master kills them (a worker process stops gracefully however often it
is signalled: Ctrl-C reaches it, then its master's SIGTERM).

Class attributes give the defaults of every option; the command line overrides them.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import daemon
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from mysqlpool.autoclose import auto_close_db
from mysqlpool.budget import process_budget, set_budget
from mysqlpool.daemon.daemonfile import Owner, absolute
from mysqlpool.daemon.exits import EXIT_BOOT_FAILED, EXIT_CUT_SHORT, EXIT_STOPPED, EXIT_UNIT_ABORTED
from mysqlpool.daemon.health import verdict
from mysqlpool.daemon.hung import HungUnits
from mysqlpool.daemon.logfile import log_to_stderr_unless_configured, open_log_file, reopen_log_files
from mysqlpool.daemon.metrics_server import MetricsServer
from mysqlpool.daemon.pidfile import PidFile
from mysqlpool.daemon.privileges import become, daemon_owner, group_named, user_named
from mysqlpool.daemon.reports import Reporter
from mysqlpool.daemon.stops import STOP_SIGNALS, Arrival, StopRequests
from mysqlpool.daemon.supervisor import RESIZES, Supervisor
from mysqlpool.daemon.systemd import Watchdog, notify
from mysqlpool.daemon.threads import WorkerThreads
from mysqlpool.registry import close_pool, get_stats
from mysqlpool.seconds import MAX_SECONDS, MAX_SECONDS_TEXT
from mysqlpool.stats import budget_summary, counted, pool_summary

logger = logging.getLogger("mysqlpool.daemon")


def _number(
    kind: Callable[[str], Any], minimum: float, allowed: str, maximum: float = math.inf
) -> Callable[[str], Any]:
    """An argparse type: ``kind`` of the text, from ``minimum`` to ``maximum``, or a clear error."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        # float() takes "nan" and "inf" too: neither is a number of seconds.
        if value is None or not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}")
        return value

    return parse


def _seconds(minimum: float) -> Callable[[str], float]:
    """An argparse type for seconds: from ``minimum`` to mysqlpool.seconds.MAX_SECONDS."""
    allowed = f"a number of seconds >= {minimum:g} and {MAX_SECONDS_TEXT}"
    parse: Callable[[str], float] = _number(float, minimum, allowed, MAX_SECONDS)
    return parse


class PooledDaemonCommand(BaseCommand):
    """Base class of worker daemons; override ``handle_job()``.

    The defaults in seconds are given to argparse as text, which it parses as if
    typed: a class attribute out of range is refused as the option would be.
    """

    threads: int = 1
    processes: int = 0
    max_jobs: int | None = None
    budget: int | None = None
    interval: float = 1.0
    graceful_timeout: float = 30.0
    daemonize: bool = False
    # Seconds between two progress lines of a worker process.
    progress_interval: float = 60.0
    # Where /metrics and /healthz are served (no port: not served).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Seconds after which a unit is reported as hung (None: never).
    unit_timeout: float | None = None

    def handle_job(self) -> object:
        """One unit of work: truthy if it did work, falsy if there was nothing to do."""
        raise NotImplementedError("PooledDaemonCommand subclasses must define handle_job()")

    def worker_process_started(self) -> None:
        """Called once in each worker process, before its threads start.

        With ``--processes``, in each forked worker (as gunicorn's ``post_fork``),
        never in the master; without, in the one process. A connection it uses is
        returned when it ends. If it raises, the process exits with
        EXIT_BOOT_FAILED, as for ``worker_started()``.
        """

    def worker_started(self) -> None:
        """Called in each worker thread before its first unit.

        If it raises, the worker process exits with EXIT_BOOT_FAILED, and the master
        stops instead of respawning workers that would fail the same way.
        """

    def worker_stopped(self) -> None:
        """Called in each worker thread after its last unit."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=_number(int, 1, "an int >= 1"),
            default=self.threads,
            help=f"Worker threads (default {self.threads}).",
        )
        parser.add_argument(
            "--processes",
            type=_number(int, 0, "an int >= 0"),
            default=self.processes,
            help="Worker processes forked and supervised by a master; 0 runs the threads "
            f"in this process (default {self.processes}).",
        )
        parser.add_argument(
            "--max-jobs",
            type=_number(int, 1, "an int >= 1"),
            default=self.max_jobs,
            help="Recycle a worker process after about this many units (with up to 10%% jitter).",
        )
        parser.add_argument(
            "--budget",
            type=_number(int, 1, "an int >= 1"),
            default=self.budget,
            help="Most server connections the process holds at once (default: "
            f"{self.budget or 'MYSQLPOOL_BUDGET'}). More threads than this share them.",
        )
        parser.add_argument(
            "--interval",
            type=_seconds(0),
            default=str(self.interval),
            help=f"Seconds a thread sleeps when a unit found nothing to do (default {self.interval}).",
        )
        parser.add_argument(
            "--daemonize",
            action="store_true",
            default=self.daemonize,
            help="Detach from the terminal (python-daemon). Under systemd, stay in the foreground.",
        )
        parser.add_argument(
            "--pidfile", help="Lock this pidfile and write the pid in it; refuse to start twice."
        )
        parser.add_argument("--log-file", help="Append the log to this file; SIGHUP reopens it.")
        parser.add_argument(
            "--user",
            type=user_named,
            help="Run as this user (a name or uid), once the pidfile and the log are open: "
            "they are given to it. Started as root, the units of work run as root without it.",
        )
        parser.add_argument(
            "--group", type=group_named, help="Run in this group (a name or gid; default: the user's)."
        )
        parser.add_argument(
            "--graceful-timeout",
            type=_seconds(0),
            default=str(self.graceful_timeout),
            help=f"Seconds units in flight get to finish after SIGTERM (default {self.graceful_timeout}).",
        )
        parser.add_argument(
            "--progress-interval",
            type=_seconds(1),
            default=str(self.progress_interval),
            help=f"Seconds between two progress lines of a worker (default {self.progress_interval}).",
        )

        parser.add_argument(
            "--metrics-port",
            type=_number(int, 1, "a TCP port from 1 to 65535", 65535),
            default=self.metrics_port,
            help="Serve /metrics (Prometheus) and /healthz on this port (needs mysqlpool[metrics]).",
        )
        parser.add_argument(
            "--metrics-host",
            default=self.metrics_host,
            help=f"The address --metrics-port listens on (default {self.metrics_host}).",
        )
        parser.add_argument(
            "--unit-timeout",
            type=_seconds(0.1),
            default=None if self.unit_timeout is None else str(self.unit_timeout),
            help="Log a unit running longer, with its stack; with --processes, recycle a worker "
            "process in which no unit started or finished for as long (default: none).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["max_jobs"] is not None and not options["processes"]:
            raise CommandError("--max-jobs recycles worker processes: it needs --processes.")
        if options["daemonize"]:
            _check_daemonize(options)
        # Bound now: a port in use or not allowed is told here, before any fork.
        server = _metrics_server(options)
        # Everything that can fail is tried before anything forks or detaches;
        # python-daemon makes "/" the working directory, so paths become absolute.
        owner = daemon_owner(options["user"], options["group"])
        pidfile = PidFile(absolute(options["pidfile"]), owner) if options["pidfile"] else None
        if pidfile is not None:
            pidfile.lock()
        # Once the pid is written, `kill -HUP $(cat pidfile)` may come at once, and
        # SIGHUP's default action ends a process: the signals wait until the
        # handlers of the master or of the worker are in place, which unblock them.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, (*_StopSignals.SIGNALS, *RESIZES))
        try:
            self._start(options, owner, pidfile, server)
            status = self._run(options, server)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if pidfile is not None:
                pidfile.release()
            if server is not None:
                server.close()
        logger.info("Stopped %s (pid %d) with exit status %d", self._name, os.getpid(), status)
        if status:
            raise CommandError(f"Stopped with status {status}: see the log above.", returncode=status)

    @property
    def _name(self) -> str:
        return type(self).__module__.rpartition(".")[2]

    def describe_unit(self) -> str:
        """What the start line names as the unit of work."""
        return f"{type(self).__module__}.{type(self).__qualname__}.handle_job"

    def _start(
        self, options: dict[str, Any], owner: Owner, pidfile: PidFile | None, server: MetricsServer | None
    ) -> None:
        """Open the log, become the daemon's user, detach if asked, write the pid."""
        log_handler = open_log_file(absolute(options["log_file"]), owner) if options["log_file"] else None
        log_to_stderr_unless_configured(options["verbosity"])
        become(owner, options["user"])
        if owner.uid == 0:
            logger.warning("Running as root: so do the units of work (--user gives root's privileges up)")
        if options["daemonize"]:
            kept: list[object] = [log_handler.stream] if log_handler is not None else []
            kept += [server.fileno()] if server is not None else []
            self._detach([*kept, *(pidfile.descriptors() if pidfile is not None else [])])
        if pidfile is not None:
            pidfile.write_pid()
        self._log_start(options)
        if server is not None:
            logger.info("Serving /metrics and /healthz on http://%s", server.address)

    def _log_start(self, options: dict[str, Any]) -> None:
        threads = counted(options["threads"], "thread")
        layout = (
            f"{counted(options['processes'], 'worker process', 'worker processes')} x {threads}"
            if options["processes"]
            else f"{threads} in this process"
        )
        limit = options["budget"] if options["budget"] is not None else process_budget().limit
        budget = "no budget" if limit is None else f"budget {limit} per process"
        logger.info(
            "Started %s (pid %d): %s, %s, unit %s",
            self._name,
            os.getpid(),
            layout,
            budget,
            self.describe_unit(),
        )

    def _detach(self, files_preserve: list[object]) -> None:
        # python-daemon closes every descriptor it is not told to keep: no pooled
        # socket may be open, and the log file's and the pidfile's must be kept
        # (the pidfile stays locked through the detach). Its default signal map
        # would turn SIGTERM into SystemExit; ours are installed later.
        connections.close_all()
        close_pool()
        context = daemon.DaemonContext(
            working_directory=os.getcwd(),
            umask=_umask(),  # the operator's: a log reopened after detaching gets it too
            detach_process=True,
            files_preserve=files_preserve,
            signal_map={},
        )
        context.open()

    def _run(self, options: dict[str, Any], server: MetricsServer | None) -> int:
        if not options["processes"]:
            # SIGTTIN and SIGTTOU resize a master's workers; here, blocked since
            # handle(), they would stop the process once unblocked at the end.
            for signum in RESIZES:
                signal.signal(signum, signal.SIG_IGN)
            return self._work(options, master=None, server=server)
        # The master forks and supervises; it never touches the database.
        connections.close_all()
        close_pool()
        master = os.getpid()
        supervisor = Supervisor(
            options["processes"],
            lambda reporter: self._work(options, master, reporter=reporter),
            options["graceful_timeout"],
            server=server,
            unit_timeout=options["unit_timeout"],
        )
        if server is not None:
            from mysqlpool.daemon.metrics import master_registry, serve

            serve(server, master_registry(supervisor), supervisor.health)
        return supervisor.run()

    def _work(
        self,
        options: dict[str, Any],
        master: int | None,
        server: MetricsServer | None = None,
        reporter: Reporter | None = None,
    ) -> int:
        """Run the worker threads of this process until stopped; return an exit status.

        Without a master, ``server`` serves its metrics; with one, ``reporter``
        sends them to it.
        """
        if master is not None:
            os.environ.pop("NOTIFY_SOCKET", None)  # the master speaks to systemd
        if options["budget"] is not None:
            set_budget(options["budget"])
        if not self._process_started():
            return EXIT_BOOT_FAILED
        stop = threading.Event()
        workers = WorkerThreads(
            self.handle_job,
            options["threads"],
            options["interval"],
            stop,
            on_start=self.worker_started,
            on_stop=self.worker_stopped,
            max_units=_jittered(options["max_jobs"]),
        )
        progress = _Progress(workers, options["progress_interval"])
        watchdog = Watchdog()
        hung = HungUnits(workers, options["unit_timeout"]) if options["unit_timeout"] else None

        def health() -> str | None:
            stalled = [workers.stalled_for()]
            return verdict(int(workers.alive()), False, stalled, options["unit_timeout"])

        report = self._operated(workers, health, server, reporter)
        # Started while the signals are blocked (see handle()), the worker threads
        # keep them blocked: only the main thread takes them, and a storm of
        # reloads never interrupts the query of a unit.
        workers.start()
        # A worker process leaves the second signal to its master: a Ctrl-C signals
        # every process of the terminal's group, and the master's SIGTERM follows.
        with _StopSignals(under_master=master is not None) as signals:
            notify("READY=1")
            while not stop.wait(1.0):
                if signals.stop_requested:
                    stop.set()
                if master is not None and os.getppid() != master:
                    logger.warning("The master process is gone: stopping")
                    stop.set()
                if signals.reopen_requested:
                    signals.reopen_requested = False
                    reopen_log_files()
                if health() is None:  # systemd restarts a process that no longer works
                    watchdog.ping_if_due()
                progress.log_if_due()
                if hung is not None:
                    hung.check()
                report()
            notify("STOPPING=1")
            logger.info(
                "Worker %d stopping: the units in flight have %gs to finish; %s",
                os.getpid(),
                options["graceful_timeout"],
                _who_ends_them(master),
            )
            finished = workers.join(options["graceful_timeout"])
        if signals.reopen_requested:  # a SIGHUP just before the stop: the last lines go to the new file
            reopen_log_files()
        progress.log("stopped")
        close_pool()
        if workers.boot_failed.is_set():
            return EXIT_BOOT_FAILED
        if workers.aborted.is_set():
            return EXIT_UNIT_ABORTED
        if not finished:
            logger.error("Units still running after --graceful-timeout; exiting without them")
            return EXIT_CUT_SHORT
        return EXIT_STOPPED

    def _operated(
        self,
        workers: WorkerThreads,
        health: Callable[[], str | None],
        server: MetricsServer | None,
        reporter: Reporter | None,
    ) -> Callable[[], None]:
        """Serve the worker's metrics and health, or report them to the master; what
        the main loop calls each second for it."""
        if server is None and reporter is None:
            return lambda: None
        from mysqlpool.daemon.metrics import exposition, serve, worker_registry

        registry = worker_registry(workers)
        if server is not None:
            serve(server, registry, health)
            server.serve_in_thread()
            return lambda: None
        assert reporter is not None
        return lambda: reporter.send(exposition(registry).decode(), workers.stalled_for())

    def _process_started(self) -> bool:
        """Run worker_process_started(); False (logged) if it raised."""
        try:
            with auto_close_db():  # the main thread must not keep a connection for ever
                self.worker_process_started()
        except Exception:
            logger.exception("worker_process_started() failed in worker %d", os.getpid())
            return False
        return True


class _Progress:
    """A log line per worker process: units done, units/s, errors, pool and budget."""

    def __init__(self, workers: WorkerThreads, interval: float) -> None:
        self.workers = workers
        self.interval = interval
        self.started = self._last = time.monotonic()

    def log_if_due(self) -> None:
        if time.monotonic() - self._last >= self.interval:
            self.log("running")

    def log(self, state: str) -> None:
        self.workers.failures.report()
        self._last = now = time.monotonic()
        elapsed = now - self.started
        pools = "; ".join(pool_summary(alias, figures) for alias, figures in get_stats().items())
        logger.info(
            "Worker %d %s after %.1fs: %d units done (%.1f/s), %d failed; pools %s; %s",
            os.getpid(),
            state,
            elapsed,
            self.workers.done,
            self.workers.done / elapsed if elapsed else 0.0,
            self.workers.errors,
            pools or "none used",
            budget_summary(process_budget().status()),
        )


def _metrics_server(options: dict[str, Any]) -> MetricsServer | None:
    """The endpoint of --metrics-port, listening; None without the option."""
    if options["metrics_port"] is None:
        return None
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise CommandError(
            "--metrics-port needs prometheus_client: pip install 'mysqlpool[metrics]'."
        ) from None
    return MetricsServer(options["metrics_host"], options["metrics_port"])


def _check_daemonize(options: dict[str, Any]) -> None:
    """--daemonize needs a pidfile and a log file: refuse it, before detaching, without them."""
    reasons = {
        "pidfile": "--pidfile (without it, no pid to stop the daemon by)",
        "log_file": "--log-file (a detached daemon has no terminal: its log would be lost)",
    }
    missing = [reason for option, reason in reasons.items() if not options[option]]
    if missing:
        raise CommandError("--daemonize needs " + " and ".join(missing) + ".")


def _umask() -> int:
    """The umask of this process (os.umask() reads it only by setting it)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _jittered(max_jobs: int | None) -> int | None:
    # Workers started together would otherwise all be recycled at once.
    return None if max_jobs is None else max_jobs + random.randint(0, max_jobs // 10)


def _who_ends_them(master: int | None) -> str:
    """What ends the units in flight at once, for the stop's log line."""
    if master is None:
        return "a second SIGTERM or SIGINT (a second or more after the first) exits at once"
    if os.getppid() == master:
        return "a second SIGTERM or SIGINT to the master (a second or more after the first) ends them at once"
    return "the master is gone: only SIGKILL ends them at once"


class _StopSignals:
    """SIGTERM and SIGINT ask for a stop; a second request (see ``stops``) ends the
    process at once, unless it is a worker process ``under_master``: its master
    decides (and once stopped, such a worker ignores them: a late SIGTERM must not
    kill a worker ending by itself, say after --max-jobs). SIGHUP asks for the log
    files to be reopened.

    The handlers only record the signal in a flag: the main thread does the work,
    within a second. A handler runs between any two bytecodes of the main thread,
    inside another handler (a storm of reloads) or an Event's lock too: taking a
    lock there could deadlock. The signals are unblocked once the handlers are in
    place (the daemon blocks them from the moment its pid is known), so that one
    sent meanwhile is handled, not lost or fatal.
    """

    SIGNALS = (*STOP_SIGNALS, signal.SIGHUP)

    def __init__(self, *, under_master: bool) -> None:
        self.under_master = under_master
        self.stop_requested = False
        self.reopen_requested = False
        self._stops = StopRequests()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # A reload during the last lines must not turn a clean stop into a death:
        # SIGHUP is ignored before anything is restored (restoring its default
        # first left a moment in which a HUP killed a worker).
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for signum, handler in self._previous.items():
            if signum != signal.SIGHUP:
                signal.signal(signum, signal.SIG_IGN if self.under_master else handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reopen_requested = True
            return
        if self._stops.arrived(signum) is Arrival.AGAIN and not self.under_master:
            os._exit(EXIT_CUT_SHORT)
        self.stop_requested = True
