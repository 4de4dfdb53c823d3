"""Atelier: serving digital-twin fashion imagery (one diffusion base model, one LoRA per person)."""

__version__ = "0.1.0"
