"""deploy/gunicorn.conf.py's hooks: what gunicorn logs of a refused request keeps no
request text (paths and queries carry learners' identifiers)."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"


@pytest.fixture(scope="module")
def conf():
    spec = importlib.util.spec_from_file_location("learnstream_gunicorn_conf", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _logged(conf, message: str, *args) -> str:
    record = logging.LogRecord("gunicorn.error", logging.WARNING, __file__, 0, message, args, None)
    assert conf._RequestContentRedacted().filter(record)
    return record.getMessage()


def test_a_refused_request_line_is_logged_without_its_text(conf):
    line = ("Invalid request from ip=10.0.0.7: Invalid HTTP request line: "
            "'GET /xapi/statements?agent=mailto:ada@x.example a b'")
    logged = _logged(conf, line)
    assert "ada@x.example" not in logged and "/xapi" not in logged
    assert logged == "Invalid request from ip=10.0.0.7: Invalid HTTP request line: '…'"


def test_a_failed_request_is_logged_with_its_method_only(conf):
    logged = _logged(conf, "Error handling request %s %s", "GET", "/results/ada-registration?x=ada@x.example")
    assert logged == "Error handling request GET …"
    assert _logged(conf, "Error handling request %s", "/results/ada?x=1") == "Error handling request …"


def test_other_lines_are_left_alone(conf):
    assert _logged(conf, "Booting worker with pid: %s", 42) == "Booting worker with pid: 42"


def test_the_filter_is_installed_on_gunicorns_error_log_when_a_worker_starts(conf):
    class Worker:  # what the hook reads of a gunicorn worker: its class's module
        pass
    error_log = logging.getLogger("gunicorn.error")
    before = list(error_log.filters)
    try:
        import gc
        conf.post_worker_init(Worker())
        gc.unfreeze()  # the hook froze this test process's objects: give them back
        assert any(isinstance(f, conf._RequestContentRedacted) for f in error_log.filters)
    finally:
        error_log.filters[:] = before
