"""The Renderer service: the GPU side. `service.py` is the thin BentoML class, `runtime.py` its work."""
