"""The `atelier` commands, by area: `audit` (verify, show, usage), `registry` (db, tenants,
keys, twins, consent) and what they share (`common`). `service.cli` parses the arguments,
dispatches to these and maps errors to exit codes.
"""
