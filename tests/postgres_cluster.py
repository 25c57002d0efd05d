"""A throwaway PostgreSQL for the tests: `initdb` into a temporary folder, `pg_ctl` start and stop, a Unix socket only.

The tests run as root on CI machines and PostgreSQL refuses to run as root, so the server runs as the unprivileged
`postgres` user (`runuser`), in a folder that user owns. Nothing listens on TCP: the socket lives in that folder too.
`AINATIVE_TEST_POSTGRES_BIN` names the folder of `initdb` and `pg_ctl` (default: found on PATH, else the newest
/usr/lib/postgresql/<version>/bin)."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

USER = "postgres"  # the unprivileged system user the server runs as when the tests run as root


class PostgresUnavailable(RuntimeError):
    "No PostgreSQL server could be started here (no binaries, no driver, no unprivileged user, or it failed to start)."


def postgres_bin() -> Path:
    "The folder of `initdb` and `pg_ctl`: $AINATIVE_TEST_POSTGRES_BIN, else the one on PATH, else the newest Debian one."
    if os.environ.get("AINATIVE_TEST_POSTGRES_BIN"):
        folder = Path(os.environ["AINATIVE_TEST_POSTGRES_BIN"])
    elif shutil.which("initdb"):
        folder = Path(shutil.which("initdb")).resolve().parent  # /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin
    else:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
        if not found:
            raise PostgresUnavailable("initdb is not installed (apt-get install postgresql, or set AINATIVE_TEST_POSTGRES_BIN "
                                      "or AINATIVE_TEST_DATABASE_URL)")
        folder = Path(found[-1]).parent
    for program in ("initdb", "pg_ctl", "postgres"):
        if not (folder / program).is_file():
            raise PostgresUnavailable(f"{folder / program} does not exist (AINATIVE_TEST_POSTGRES_BIN={folder})")
    return folder


def check_driver() -> None:
    "A `PostgresUnavailable` unless psycopg (the driver of postgresql+psycopg:// URLs) is importable."
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        raise PostgresUnavailable(f"the driver psycopg is not installed ({error}): pip install 'psycopg[binary]'") from None


class PostgresCluster:
    "A PostgreSQL cluster of its own in a temporary folder, listening on a Unix socket only; `url()` reaches it."

    def __init__(self, bin_dir: Path | None = None):
        check_driver()
        self.bin = bin_dir or postgres_bin()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try: self.owner = pwd.getpwnam(USER)
            except KeyError: raise PostgresUnavailable(f"the tests run as root and there is no user {USER!r} to run PostgreSQL as") from None
        self.folder = Path(tempfile.mkdtemp(prefix="ainative-postgres-"))  # /tmp: pytest's own folders are root's, 0700
        if self.as_root: os.chown(self.folder, self.owner.pw_uid, self.owner.pw_gid)
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.user = USER if self.as_root else pwd.getpwuid(os.geteuid()).pw_name
        self.running = False

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", USER, "--"] if self.as_root else []
        return subprocess.run(prefix + list(command), capture_output=True, text=True, timeout=timeout, cwd=self.folder)

    def _failed(self, what: str, finished: subprocess.CompletedProcess) -> PostgresUnavailable:
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return PostgresUnavailable(f"{what} failed ({finished.returncode}): {(finished.stderr or finished.stdout)[-1500:]} {log}".strip())

    def init(self) -> PostgresCluster:
        "initdb: a new cluster whose superuser is `self.user`, trusted on the socket (nothing else can reach it)."
        finished = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
                             "--no-sync", "--no-instructions")
        if finished.returncode != 0: raise self._failed("initdb", finished)
        return self

    def start(self) -> PostgresCluster:
        "pg_ctl start, waiting until it accepts connections; fsync off (a test database need not survive a power cut)."
        options = f"-k {self.folder} -c listen_addresses='' -F -c max_connections=200"
        finished = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        if finished.returncode != 0: raise self._failed("pg_ctl start", finished)
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        "pg_ctl stop: `fast` ends the sessions and shuts down cleanly, `immediate` is a crash."
        if not self.running: return
        finished = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if finished.returncode != 0: raise self._failed("pg_ctl stop", finished)
        self.running = False

    def remove(self) -> None:
        "Stop the server (if it runs) and delete its folder."
        try: self.stop("immediate")
        finally: shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        "The SQLAlchemy URL of `database` on this cluster, through its socket."
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.folder}"

    def create_database(self) -> str:
        "A new, empty database; its URL."
        return create_database(self.url())

    def drop_database(self, url: str) -> None:
        "Drop the database of `url`, made by `create_database`."
        drop_database(self.url(), url)

    @classmethod
    def started(cls) -> PostgresCluster:
        "A new cluster, initialised and running (about a second); removed by the caller."
        cluster = cls()
        try: return cluster.init().start()
        except BaseException:
            cluster.remove()
            raise


class ExternalServer:
    "A server the environment names (AINATIVE_TEST_DATABASE_URL): each test gets a database of its own on it (needs CREATEDB)."

    def __init__(self, url: str):
        check_driver()
        self.admin_url = url

    def url(self, database: str | None = None) -> str:
        import sqlalchemy as sa
        parsed = sa.engine.make_url(self.admin_url)
        return parsed.set(database=database).render_as_string(hide_password=False) if database else self.admin_url

    def create_database(self) -> str:
        return create_database(self.admin_url)

    def drop_database(self, url: str) -> None:
        drop_database(self.admin_url, url)

    def remove(self) -> None:
        pass


def create_database(admin_url: str) -> str:
    "A new database on the server of `admin_url`, named test_<random>; its URL."
    import sqlalchemy as sa
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection: connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally: engine.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    "Drop the database of `url` through `admin_url` (connections still open to it, e.g. a stopped server's pool, are ended first)."
    import sqlalchemy as sa
    parsed = sa.engine.make_url(url)
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection: connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally: engine.dispose()
