"""The tamper-evident, append-only audit log: records, hash chain, Merkle checkpoints, verify, usage.

Owns: `record` (canonical JSON and record hashes), `chain` (the appender: each process's hash
chain committed to the registry), `archive` (sealed segment files written from the registry),
`segments` (the files' layout, and reading them), `merkle` (RFC 6962/9162 tree hashes
and proofs), `checkpoint` (Ed25519-signed tree heads), `verify` (offline verification of a log
directory), `usage` (image counts per day, tenant, twin), and `shipper` (copies sealed files to
S3). Must never import bentoml or reach upward into `app`, `jobs` or `tenancy`; an audit record
must never contain API keys, secrets or image bytes.
"""
