"""Project-manager and training-pipeline endpoints: one small module per area, one view per operation.

Access rule (the same everywhere): an endpoint under ``/api/v1/projects/{id}/`` answers only a
manager of that project (or a superuser); anyone else who is signed in gets 403 — also when the
project does not exist, so ids of other projects reveal nothing; anonymous requests get 401.
Raters get 403 on every one of these endpoints.
"""
