"""How the assessment service's parts fit together (read by the CLI, worker and tests)."""
from pathlib import Path

from services.assessment import tables
from services.assessment.app import commands, create_app
from services.assessment.projections import projection
from shared.service import ServiceSpec, Timer


def close_expired_attempts(settings, engine) -> int:
    """Attempts whose time ran out are closed and scored with what was answered, even
    if nobody reads or submits them again."""
    return commands(settings, engine).close_expired()


SERVICE = ServiceSpec(
    name="assessment",
    metadata=tables.metadata,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    outbox=tables.outbox,
    offsets=tables.consumer_offsets,
    processed=tables.processed_statements,
    projection=projection,
    timers=(Timer("close-expired-attempts", close_expired_attempts),),
)
