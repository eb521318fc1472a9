"""Which Kafka broker the tests use (docs/architecture.md, The runtime):
KAFKA_BOOTSTRAP_SERVERS if set; else a testcontainers Kafka where a Docker engine
answers; else a local Apache Kafka (deploy/kafka) that the test session starts itself."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from shared.stack import free_port

REPO = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO / "deploy" / "kafka" / "kafka.sh"


class LocalBroker:
    """A real single-node Kafka from deploy/kafka, with its own ports and data dir."""

    def __init__(self, data_dir: Path, port: int | None = None, controller_port: int | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, action: str) -> None:
        env = dict(os.environ, KAFKA_PORT=str(self.port), KAFKA_CONTROLLER_PORT=str(self.controller_port),
                   KAFKA_DATA_DIR=str(self.data_dir))
        subprocess.run(["bash", str(KAFKA_SCRIPT), action], env=env, check=True,
                       stdout=subprocess.DEVNULL if action == "stop" else None)

    def start(self) -> LocalBroker:
        self._run("start")
        return self

    def stop(self) -> None:
        self._run("stop")


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


class SessionBroker:
    def __init__(self, tmp_root: Path):
        self.tmp_root = tmp_root
        self._stop = None

    def start(self) -> str:
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        if _docker_answers():
            from testcontainers.kafka import KafkaContainer

            container = KafkaContainer().with_kraft()
            container.start()
            self._stop = container.stop
            return container.get_bootstrap_server()
        broker = LocalBroker(self.tmp_root / "session-kafka").start()
        self._stop = broker.stop
        return broker.bootstrap

    def stop(self) -> None:
        if self._stop:
            self._stop()
