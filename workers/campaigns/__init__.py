"""Bulk campaigns: one interactive message to every recipient of a CSV or JSONL file.

``template`` (placeholders), ``phones`` (E.164) and ``reader`` (streamed rows) are pure;
``ingest`` turns rows into ledger batches through ``store`` (all the campaigns' SQL);
``fanout`` publishes the send jobs (run by the ``wadispatch.campaign_fanout`` task); ``api`` is the
public Python API, which ``wadispatch campaign ...`` (:mod:`wadispatch.campaign_cli`) wraps.
"""
