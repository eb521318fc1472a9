"""`learnstream migrate` / `topics` started before their database or broker (a container
up before its dependencies): a one-line message and a retry, then a clear error, never a
traceback. Port 1 on loopback: nothing listens there, the refusal is immediate."""
from click.testing import CliRunner

from shared.cli import main


def run(args, env):
    return CliRunner().invoke(main, args, env=env)


def test_migrate_retries_then_names_the_database_without_its_password():
    # --wait leaves room for a first attempt slowed by a busy machine: the first pause is
    # then still the whole second.
    result = run(["migrate", "enrollment", "--wait", "4"],
                 {"DATABASE_URL": "postgresql+psycopg://ops:hunter2@127.0.0.1:1/ls",
                  "DATABASE_CONNECT_TIMEOUT_SECONDS": "2"})
    assert result.exit_code == 1
    assert ("enrollment: cannot reach the database postgresql+psycopg://ops:***@127.0.0.1:1/ls_enrollment"
            in result.output)
    assert "retrying in 1 s" in result.output and "gave up after 4 s (--wait)" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # click's error exit, not an uncaught exception


def test_topics_without_a_broker_fails_clearly_at_once_with_wait_zero():
    result = run(["topics", "enrollment", "--wait", "0"], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert "enrollment: cannot reach the broker at 127.0.0.1:1" in result.output
    assert "retrying" not in result.output and "Traceback" not in result.output
