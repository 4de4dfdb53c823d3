"""The Gateway service: the CPU side and every public route. Never imports torch or diffusers."""
