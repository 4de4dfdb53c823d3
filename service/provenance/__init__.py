"""Provenance of generated images: invisible watermark, XMP digital source type, C2PA signing and verification."""
