"""Studio, Atelier's web console, served by the gateway at /studio (see `service.studio.app`)."""

from service.studio.app import build_studio
from service.studio.app import route_templates as studio_routes

__all__ = ["build_studio", "studio_routes"]
