"""Pulling images straight from a registry (OCI distribution spec / Docker Registry HTTP API v2).

Kept import-light on purpose: the source registry imports this package's submodules lazily, so
reading an archive never loads httpx.

    reference.py   image names as docker reads them, and `registry://HOST/REPO:TAG`
    secret.py      a string that never shows itself in a repr, a log or a traceback
    auth.py        credentials (flags, ~/.docker/config.json, credential helpers) and the token flow
    models.py      pydantic models of every JSON document a registry or a helper sends
    client.py      HTTP: retries, timeouts, redirects without credentials, bounded bodies
    blobstream.py  a blob as a file-like reader, digest verified while it streams
    pull.py        reference -> manifest (platform chosen in an index) -> config + layer descriptors
"""
