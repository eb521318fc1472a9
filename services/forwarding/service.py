"""How the forwarding service's parts fit together (read by the CLI, worker and tests).

No outbox (it publishes nothing); one projection (the catalog its cohort and agency
filters read); and a loop of its own in the worker's projections part: the forwarder."""
from pathlib import Path

from services.forwarding import forwarder, tables
from services.forwarding.app import create_app
from services.forwarding.cli import forwarding
from services.forwarding.projections import projection
from shared.service import Loop, ServiceSpec

SERVICE = ServiceSpec(
    name="forwarding",
    metadata=tables.metadata,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    offsets=tables.consumer_offsets,
    processed=tables.processed_statements,
    projection=projection,
    loops=(Loop("forwarder", forwarder.supervise),),
    loop_topics=forwarder.PRODUCERS,
    commands=(forwarding,),
)
