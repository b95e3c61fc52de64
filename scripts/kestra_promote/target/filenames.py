"""The name a target stores a namespace file under, when it is not the name it was sent with.

Kestra 1.3's ``NamespaceFileController`` (webserver/.../controllers/api/NamespaceFileController
.java, branch releases/v1.3.x) turns the ``path`` of every file request (upload, download,
listing, delete) into a URI by passing it through ``URLEncoder`` and then reading the URI's
decoded path back. The decoding undoes every ``%XX`` escape the encoder wrote, so ``+``, ``%``,
``&``, ``/`` and non-ASCII letters come back as they were sent; a space does not: the encoder
writes it as ``+``, which is no escape, so ``/my file.txt`` is stored as ``/my+file.txt``. Flows
read namespace files by their stored name (the storage layer, ``core/.../storages/
NamespaceFile.java``, encodes nothing), so on 1.3 such a file can be neither written, read nor
deleted under its Git name through the API. Kestra 2.0 builds the URI with the multi-argument
constructor, which quotes what needs quoting and gives the path back unchanged: every name is
kept.

So a promotion to Kestra 1.3 refuses a namespace file whose name holds a space (it would be
written under another name, and reported as matching Git when it does not), naming the file,
the name 1.3 would store it under, and what to do.
"""

from __future__ import annotations

from typing import Iterable

from kestra_promote.models import DesiredFile


def stored_path(path: str, major: int | None) -> str:
    """The name a Kestra of major version ``major`` stores a file uploaded as ``path`` under
    (``major`` None: the version is not known, taken as one that may change it)."""
    return path if major is not None and major >= 2 else path.replace(" ", "+")


def name_refusals(files: Iterable[DesiredFile], major: int | None) -> list[str]:
    """Why each of ``files`` cannot be promoted to this target under its own name."""
    refused = []
    for file in files:
        stored = stored_path(file.key.path, major)
        if stored == file.key.path:
            continue
        version = "Kestra 1.3" if major is not None else \
            "The target did not say its Kestra version, and Kestra 1.3"
        refused.append(
            f"{file.key} ({file.path}): {version} stores each space of a namespace file's name "
            f"as '+' (its API passes the path through URLEncoder), so this file would be "
            f"written as {stored!r}, a name flows do not find it by, and could not be deleted "
            "under its own name: rename it without spaces, or promote to Kestra 2.0, which "
            "keeps every name")
    return refused
