"""How the certification service's parts fit together (read by the CLI, worker and tests)."""
from pathlib import Path

from services.certification import tables
from services.certification.app import create_app
from services.certification.projections import projection
from shared.service import ServiceSpec

SERVICE = ServiceSpec(
    name="certification",
    metadata=tables.metadata,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    outbox=tables.outbox,
    offsets=tables.consumer_offsets,
    processed=tables.processed_statements,
    projection=projection,
)
