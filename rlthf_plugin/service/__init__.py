"""The long-running service: the FastAPI app and its webhook receivers (:mod:`.app`), the
worker that moves iterations on (:mod:`.worker`), the Label Studio ML backend
(:mod:`.ml_backend`), the Prometheus metrics (:mod:`.metrics`), body caps and credentials
(:mod:`.guard`) and the public health codes (:mod:`.health`). Needs the ``serve`` extra.
"""
