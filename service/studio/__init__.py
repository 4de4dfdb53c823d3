"""Studio, Atelier's web console, served by the gateway at /studio (see `service.studio.app`)."""

from service.studio.app import build_studio

__all__ = ["build_studio"]
