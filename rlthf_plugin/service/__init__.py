"""The long-running service: the FastAPI app and its webhook receivers (:mod:`.app`), the
worker that moves iterations on (:mod:`.worker`), the Label Studio ML backend
(:mod:`.ml_backend`) and the Prometheus metrics (:mod:`.metrics`). Needs the ``serve`` extra.
"""
