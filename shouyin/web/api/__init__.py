"""The REST API: one module per audience, each exposing ``router`` (an ``APIRouter``).

:func:`shouyin.web.app.create_app` includes the ``router`` of every module found here, so a new
module needs no other registration. Routes are thin: they check the caller
(:mod:`shouyin.web.auth`), call the lane services or the payment orchestrator, and convert the
result to the module's pydantic schemas (never table models or domain objects directly).
"""
