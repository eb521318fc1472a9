"""Ralph 5.1's LRS app with its file-system backend appending (bench.peer serves it).

Runs inside Ralph's own virtualenv (var/ralph-venv), never learnstream's: uvicorn imports
it by name (`uvicorn --app-dir bench ralph_app:app`), once in each worker process.

As shipped, Ralph's FSLRSBackend writes with its data backend's default operation,
CREATE, which refuses a file that already exists: every POST after the first answers 500
("fs_lrs.jsonl already exists and overwrite is not allowed"). Appending is what an LRS
needs, so the class default is set to APPEND before the app (and its backend) is made.
Nothing else of Ralph is changed.
"""
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

from ralph.api import app  # noqa: E402  (after the patch, on purpose)

__all__ = ["app"]
