"""Settings read from the environment, with the defaults documented in README.md.

Every process (HTTP worker, relay, projection worker, CLI) builds one `Settings` for its
service at start-up; nothing else reads `os.environ`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from shared.secrets import SecretBox, keys_from

REPO_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LEARNSTREAM_VAR_DIR", REPO_ROOT / "var"))

SERVICES = ("enrollment", "progress", "assessment", "certification", "forwarding")
DEFAULT_PORTS = {"enrollment": 8001, "progress": 8002, "assessment": 8003, "certification": 8004, "forwarding": 8005}


def service_database_url(service: str, env=os.environ) -> str:
    """The service's own database.

    `<SERVICE>_DATABASE_URL` wins; else `DATABASE_URL` names a server and base database,
    and each service gets its own database on it (`<base>_<service>`), because services
    never share a database; else an SQLite file under var/.
    """
    explicit = env.get(f"{service.upper()}_DATABASE_URL")
    if explicit:
        return explicit
    base = env.get("DATABASE_URL")
    if base:
        url = make_url(base)
        if url.get_backend_name() == "sqlite":
            db = url.database or ""
            stem, dot, ext = db.rpartition(".")
            return str(url.set(database=f"{stem}_{service}.{ext}" if dot else f"{db}_{service}"))
        return url.set(database=f"{url.database}_{service}").render_as_string(hide_password=False)
    return f"sqlite:///{VAR_DIR / 'db' / f'{service}.sqlite'}"


def _credentials(raw: str) -> tuple[dict[str, str], dict[str, str]]:
    """`key:secret[:unit]` items: secrets by key, and the organisation unit a key is
    limited to (a key without one is a campaign operator and sees every unit)."""
    secrets, units = {}, {}
    for item in raw.split(","):
        key, _, rest = item.strip().partition(":")
        secret, _, unit = rest.partition(":")
        if key and secret:
            secrets[key] = secret
            if unit:
                units[key] = unit
    return secrets, units


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long a database may take before a request gives up with a 503 (README,
    configuration). Below gunicorn's 60 s worker timeout, so a request answers 503 before
    gunicorn would kill its worker mid-answer."""

    # Opening a PostgreSQL connection (libpq connect_timeout, whole seconds, at least 2).
    connect_seconds: float = 5.0
    # One PostgreSQL statement (statement_timeout), and unacknowledged data on its socket
    # (tcp_user_timeout: a server gone without a word). 0: no limit (migrations).
    statement_seconds: float = 30.0
    # Waiting for SQLite's write lock (busy_timeout).
    sqlite_busy_seconds: float = 30.0


@dataclass(frozen=True)
class OidcSettings:
    """Bearer tokens from an identity provider (shared.oidc, docs/accounts.md): off
    unless an issuer and a JWKS (URL or file) are configured."""

    issuer: str = ""
    audience: str = ""
    jwks_url: str = ""
    jwks_file: str = ""
    # Claims, as dotted paths into the token ("realm_access.roles" for Keycloak's realm roles).
    role_claim: str = "learnstream_role"
    units_claim: str = "learnstream_units"
    cohorts_claim: str = "learnstream_cohorts"
    name_claim: str = "preferred_username"
    leeway_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and (self.jwks_url or self.jwks_file))


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # A prefix lets several isolated deployments (or test runs) share one broker.
    topic_prefix: str = ""
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    # With replication 3, 2: an acks=all write is on two brokers before it is acknowledged.
    topic_min_insync_replicas: int = 1
    port: int = 8000
    # Where clients reach this service from outside (`<SERVICE>_PUBLIC_URL`): certification
    # prints it on certificates and in their QR codes. Empty: this machine at `port`.
    configured_public_url: str = ""
    # Operator credentials, "key:secret,key:secret"; none configured means nobody gets in.
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    operator_units: dict[str, str] = field(default_factory=dict)
    activity_base: str = "https://learnstream.dev/xapi/activities/"
    relay_batch_size: int = 1000
    relay_idle_seconds: float = 0.05
    consumer_max_records: int = 1000
    # A rebuild's batches: larger, since no one waits for their freshness (one commit each).
    consumer_rebuild_records: int = 5000
    # More dead letters than this in a row stop the projection: a bug that breaks every
    # record must not drain a topic into the dead-letter topic.
    consumer_dead_letter_limit: int = 100
    # A batch that fails for a passing reason (a locked or absent database) is retried
    # with exponential backoff up to this many seconds between tries.
    consumer_retry_max_seconds: float = 30.0
    timer_interval_seconds: float = 10.0
    # A forwarding target filtered by cohort or agency judges a statement of no known
    # enrolment only this long after it was stored (services.forwarding.forwarder).
    forwarding_enrolment_wait_seconds: float = 10.0
    log_level: str = "INFO"
    database_timeouts: DatabaseTimeouts = field(default_factory=DatabaseTimeouts)
    # The key the LRS signs its `more` page tokens with; empty: a random one kept in the
    # progress database (services/progress/lrs/cursors.py says why either works).
    lrs_cursor_secret: str = field(default="", repr=False)
    # Keys sealing the secrets a service stores (shared.secrets); empty: one kept under var/.
    secret_keys: str = field(default="", repr=False)
    # How stale a process's copy of the accounts may be (shared.auth): a disabled key is
    # refused this long at most after the service has projected the change.
    accounts_refresh_seconds: float = 1.0
    oidc: OidcSettings = field(default_factory=lambda: OidcSettings())
    # The key the dashboard signs its session cookies with; empty: a random one made once
    # under var/ (services/progress/dashboard.py). Every progress process must share it.
    dashboard_session_secret: str = field(default="", repr=False)
    # Mark the session cookie Secure even on plain HTTP (behind a TLS proxy that does not
    # say X-Forwarded-Proto); over https it is Secure anyway.
    dashboard_secure_cookies: bool = False
    # Where browsers reach every service (`<SERVICE>_PUBLIC_URL`, else this machine at
    # `<SERVICE>_PORT`): the dashboard (progress) and the admin pages (enrollment) link to
    # each other and share one sign-in (shared.web_session).
    service_urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, service: str, env=os.environ) -> Settings:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        credentials, operator_units = _credentials(env.get("LEARNSTREAM_CREDENTIALS", ""))
        return cls(
            service=service,
            database_url=service_database_url(service, env),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            topic_prefix=env.get("KAFKA_TOPIC_PREFIX", ""),
            topic_partitions=int(env.get("KAFKA_TOPIC_PARTITIONS", "6")),
            topic_replication_factor=int(env.get("KAFKA_TOPIC_REPLICATION_FACTOR", "1")),
            topic_min_insync_replicas=int(env.get("KAFKA_TOPIC_MIN_INSYNC_REPLICAS", "1")),
            port=int(env.get(f"{service.upper()}_PORT", DEFAULT_PORTS[service])),
            configured_public_url=env.get(f"{service.upper()}_PUBLIC_URL", ""),
            credentials=credentials,
            operator_units=operator_units,
            activity_base=env.get("LEARNSTREAM_ACTIVITY_BASE", "https://learnstream.dev/xapi/activities/"),
            relay_batch_size=int(env.get("RELAY_BATCH_SIZE", "1000")),
            relay_idle_seconds=float(env.get("RELAY_IDLE_SECONDS", "0.05")),
            consumer_max_records=int(env.get("CONSUMER_MAX_RECORDS", "1000")),
            consumer_rebuild_records=int(env.get("CONSUMER_REBUILD_RECORDS", "5000")),
            consumer_dead_letter_limit=int(env.get("CONSUMER_DEAD_LETTER_LIMIT", "100")),
            consumer_retry_max_seconds=float(env.get("CONSUMER_RETRY_MAX_SECONDS", "30")),
            timer_interval_seconds=float(env.get("TIMER_INTERVAL_SECONDS", "10")),
            forwarding_enrolment_wait_seconds=float(env.get("FORWARDING_ENROLMENT_WAIT_SECONDS", "10")),
            log_level=env.get("LOG_LEVEL", "INFO"),
            database_timeouts=DatabaseTimeouts(
                connect_seconds=float(env.get("DATABASE_CONNECT_TIMEOUT_SECONDS", "5")),
                statement_seconds=float(env.get("DATABASE_STATEMENT_TIMEOUT_SECONDS", "30")),
                sqlite_busy_seconds=float(env.get("SQLITE_BUSY_TIMEOUT_SECONDS", "30")),
            ),
            lrs_cursor_secret=env.get("LRS_CURSOR_SECRET", ""),
            secret_keys=env.get(f"{service.upper()}_SECRET_KEYS", ""),
            accounts_refresh_seconds=float(env.get("ACCOUNTS_REFRESH_SECONDS", "1")),
            oidc=OidcSettings(
                issuer=env.get("OIDC_ISSUER", ""), audience=env.get("OIDC_AUDIENCE", ""),
                jwks_url=env.get("OIDC_JWKS_URL", ""), jwks_file=env.get("OIDC_JWKS_FILE", ""),
                role_claim=env.get("OIDC_ROLE_CLAIM", "learnstream_role"),
                units_claim=env.get("OIDC_UNITS_CLAIM", "learnstream_units"),
                cohorts_claim=env.get("OIDC_COHORTS_CLAIM", "learnstream_cohorts"),
                name_claim=env.get("OIDC_NAME_CLAIM", "preferred_username"),
                leeway_seconds=float(env.get("OIDC_LEEWAY_SECONDS", "30")),
            ),
            dashboard_session_secret=env.get("DASHBOARD_SESSION_SECRET", ""),
            dashboard_secure_cookies=env.get("DASHBOARD_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
            service_urls={name: env.get(f"{name.upper()}_PUBLIC_URL", "")
                          or f"http://127.0.0.1:{env.get(f'{name.upper()}_PORT', port)}"
                          for name, port in DEFAULT_PORTS.items()},
        )

    def secret_box(self) -> SecretBox:
        """What seals and opens this service's stored secrets (shared.secrets)."""
        return SecretBox(keys_from(self.secret_keys, VAR_DIR / "secrets" / f"{self.service}.key"))

    @property
    def public_url(self) -> str:
        """Derived from the port unless set, so a service moved to another port does not
        print links to the old one (certificates pointed at :8004 whatever the port)."""
        return (self.configured_public_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    def url_of(self, service: str) -> str:
        """Where browsers reach `service` (this one: public_url)."""
        if service == self.service:
            return self.public_url
        return (self.service_urls.get(service) or f"http://127.0.0.1:{DEFAULT_PORTS[service]}").rstrip("/")

    def topic(self, producing_service: str) -> str:
        return f"{self.topic_prefix}learnstream.{producing_service}.v1"

    @property
    def own_topic(self) -> str:
        return self.topic(self.service)

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}learnstream.{self.service}.deadletter.v1"

    @property
    def consumer_group(self) -> str:
        return f"{self.topic_prefix}learnstream.{self.service}"
