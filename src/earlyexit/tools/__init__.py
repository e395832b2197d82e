"""Programs built on the library, not part of its API: the ``earlyexit`` command, its demo, the local
endpoint (``earlyexit serve``), the timeline view and the benchmark (``python -m earlyexit.tools.bench``)."""
