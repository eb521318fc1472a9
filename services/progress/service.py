"""How the progress service's parts fit together (read by the CLI, worker and tests)."""
from pathlib import Path

from services.progress import tables
from services.progress.app import create_app
from services.progress.lrs.cli import lrs_credentials
from services.progress.projections import projection
from shared.service import ServiceSpec

SERVICE = ServiceSpec(
    name="progress",
    metadata=tables.metadata,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    outbox=tables.outbox,
    produces="lrs",  # the LRS publishes to learnstream.lrs.v1 (docs/architecture.md, The LRS)
    offsets=tables.consumer_offsets,
    processed=tables.processed_statements,
    projection=projection,
    # xAPI clients (players, LMSs) are many and mostly waiting on the network; gevent
    # serves them all from two processes, and lets their statement POSTs share commits.
    web_worker_class="gevent",
    commands=(lrs_credentials,),
)
