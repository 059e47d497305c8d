"""Response models: the body every ``/api`` route answers on success, one module per domain.

Routers declare them with ``response_model=`` (and ``responses=`` for a second success status), so
the OpenAPI document describes each answer as the handlers build it (the domain ``to_dict``
functions). Models name every field and forbid others (``base.Answer``): a field a handler sends
but its model lacks fails the answer loudly instead of silently vanishing from it. Free-form parts
(a config's ``args``, an audit entry's ``details``, a job's ``progress``) are typed as objects.
Streams and downloads declare their media type (``media``) instead of a JSON model.
"""
