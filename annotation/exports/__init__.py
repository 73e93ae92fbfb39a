"""Preference-dataset exports: raw judgments, aggregated labels, TRL preference pairs.

The pipeline streams with constant memory: a query is read as Arrow record batches
(:mod:`annotation.exports.arrow_source`: PostgreSQL ``COPY … TO STDOUT`` parsed by pyarrow, or
a server-side cursor elsewhere), each kind shapes its batches (:mod:`raw`, :mod:`labels`) and a
writer per format turns batches into bytes (:mod:`writers`). Options are validated once in
:mod:`spec`. The service (``annotation.services.exports``) ties them together for the API, the
export task and the ``export_preferences`` command.
"""
