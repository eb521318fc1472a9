"""How the progress service's parts fit together (read by the CLI, worker and tests)."""
from pathlib import Path

from services.progress import tables
from services.progress.app import create_app
from services.progress.cmi5.lms import Cmi5Lms
from services.progress.lrs.cli import lrs_credentials
from services.progress.projections import projection
from shared.service import ServiceSpec, Timer


def abandon_expired_cmi5_sessions(settings, engine) -> int:
    """cmi5 sessions open past their time are abandoned, whether or not anyone launches again."""
    return Cmi5Lms.for_service(engine, settings).expire_sessions()


SERVICE = ServiceSpec(
    name="progress",
    metadata=tables.metadata,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    outbox=tables.outbox,
    produces="lrs",  # the LRS publishes to learnstream.lrs.v1 (docs/architecture.md, The LRS)
    # The cmi5 LMS's courses imported and removed (cmi5/statements.py), which enrollment projects.
    also_produces=("content",),
    offsets=tables.consumer_offsets,
    processed=tables.processed_statements,
    projection=projection,
    # xAPI clients (players, LMSs) are many and mostly waiting on the network; gevent
    # serves them all from two processes, and lets their statement POSTs share commits.
    web_worker_class="gevent",
    commands=(lrs_credentials,),
    timers=(Timer("abandon-expired-cmi5-sessions", abandon_expired_cmi5_sessions),),
)
