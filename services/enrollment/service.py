"""How the enrollment service's parts fit together (read by the CLI, worker and tests)."""
from pathlib import Path

from services.enrollment import tables
from services.enrollment.app import create_app
from services.enrollment.cli import accounts_cli
from services.enrollment.projections import projection
from shared.service import ServiceSpec

SERVICE = ServiceSpec(
    name="enrollment",
    metadata=tables.metadata,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    outbox=tables.outbox,
    # The accounts' changes (shared.accounts), which every other service projects.
    also_produces=("accounts",),
    # The cmi5 courses imported (projections.py), which programmes are defined from.
    offsets=tables.consumer_offsets,
    processed=tables.processed_statements,
    projection=projection,
    commands=(accounts_cli,),
)
