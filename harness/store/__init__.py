"""The results store: every saved run published to MLflow tracking, read back for history and fleet views.

``uri`` resolves where the store is (``--results-uri``, ``$EDGEBENCH_RESULTS_URI``, else an
embedded SQLite file under ``.benchmarks/``); ``publish`` turns a saved run into MLflow runs;
``read`` returns what was published as plain records for ``harness.report.history``.
"""
