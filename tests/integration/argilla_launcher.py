"""Start argilla-server 2.8.0 (or its rq worker) with the harness's in-memory search engine.

Run with the *server's* Python (its own virtual environment), never the project's::

    python argilla_launcher.py setup --owner-key K --owner-password P --annotator NAME:KEY:PASSWORD ...
    python argilla_launcher.py server --host 127.0.0.1 --port 6900
    python argilla_launcher.py worker

The server's configuration comes from the usual ``ARGILLA_*`` environment variables
(database, Redis, home path). This script only registers
:class:`argilla_memory_engine.InMemorySearchEngine` in the server's search-engine
registry (``SearchEngine.register``), sets ``ARGILLA_SEARCH_ENGINE`` to it before the
server reads its settings, and runs uvicorn on the server's own app. No server code is
patched.

The worker delivers webhooks (queue ``high``) and runs dataset jobs (queue ``default``).
It is a separate process, so it cannot see the server's in-memory index: a job there
that needs the search engine (re-computing record status after the task distribution of
a dataset with responses changes, importing from the Hub) fails loudly instead of
silently updating an index nobody reads.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ENGINE_NAME = "rlthf-memory"


def _register(engine_class) -> None:
    os.environ["ARGILLA_SEARCH_ENGINE"] = ENGINE_NAME  # read when argilla_server.settings is imported
    from argilla_server.search_engine import SearchEngine

    SearchEngine.register(ENGINE_NAME)(engine_class)


def serve(host: str, port: int, log_level: str) -> None:
    os.environ["ARGILLA_SEARCH_ENGINE"] = ENGINE_NAME
    from argilla_memory_engine import InMemorySearchEngine

    _register(InMemorySearchEngine)
    import uvicorn

    from argilla_server._app import app

    uvicorn.run(app, host=host, port=port, log_level=log_level)


def work() -> None:
    os.environ["ARGILLA_SEARCH_ENGINE"] = ENGINE_NAME
    from argilla_server.search_engine import SearchEngine

    def refuse(name):
        async def method(self, *args, **kwargs):
            raise RuntimeError(
                f"SearchEngine.{name}: the harness's in-memory search engine lives in the server process; "
                "this worker job needs a shared search engine (Elasticsearch/OpenSearch)")
        return method

    class WorkerSideEngine(SearchEngine):
        """Instantiable (a job that touches no record succeeds); every index call fails loudly."""

        @classmethod
        async def new_instance(cls):
            return cls()

        async def close(self):
            pass

    for name in SearchEngine.__abstractmethods__ - {"new_instance", "close"}:
        setattr(WorkerSideEngine, name, refuse(name))
    WorkerSideEngine.__abstractmethods__ = frozenset()

    _register(WorkerSideEngine)
    from rq import Worker

    from argilla_server.jobs.queues import DEFAULT_QUEUE, HIGH_QUEUE, REDIS_CONNECTION

    # with_scheduler: webhook deliveries are retried at 10, 60, 180 s, which needs the scheduler.
    Worker([HIGH_QUEUE, DEFAULT_QUEUE], connection=REDIS_CONNECTION).work(with_scheduler=True, logging_level="WARNING")


def setup(owner_key: str, owner_password: str, annotators: list[str], workspace: str) -> None:
    """Migrate the database and create the owner and annotators, in one process.

    The same functions as ``python -m argilla_server database migrate`` and ``database
    users create_default`` / ``create``; one process instead of one per command, since
    each start of the server's CLI imports the whole server (seconds on 2 cores).
    """
    import asyncio

    from argilla_server.cli.database.migrate import migrate_db
    from argilla_server.cli.database.users.create import _create
    from argilla_server.cli.database.users.create_default import _create_default
    from argilla_server.enums import UserRole

    migrate_db(revision="head")
    asyncio.run(_create_default(api_key=owner_key, password=owner_password, quiet=True))
    for spec in annotators:
        name, key, password = spec.split(":", 2)
        asyncio.run(_create(first_name=name, username=name, role=UserRole.annotator, password=password,
                            api_key=key, workspace=[workspace]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    server = sub.add_parser("server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--log-level", default="warning")
    sub.add_parser("worker")
    init = sub.add_parser("setup")
    init.add_argument("--owner-key", required=True)
    init.add_argument("--owner-password", required=True)
    init.add_argument("--annotator", action="append", default=[], help="NAME:API_KEY:PASSWORD")
    init.add_argument("--workspace", default="argilla")
    args = parser.parse_args()
    if args.what == "setup":
        setup(args.owner_key, args.owner_password, args.annotator, args.workspace)
    elif args.what == "server":
        serve(args.host, args.port, args.log_level)
    else:
        work()


if __name__ == "__main__":
    main()
