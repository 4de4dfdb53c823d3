"""Build-time tools: demo assets, dev keys, exports. Never imported by the running service."""
