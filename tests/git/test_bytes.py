"""What bytes are promoted: those Git holds in the commit, whatever the checkout's conversions.

A namespace file is uploaded as the commit's blob, not as a clone's working tree wrote it
(``core.autocrlf``, ``eol`` and ``ident`` attributes), so two clones of one commit promote the
same bytes; only a file that differs from the commit (``--allow-dirty``) is read from the
working tree. ``--ref`` reads the ``.gitattributes`` of the commit it promotes.
"""

from __future__ import annotations

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve

pytestmark = pytest.mark.fake_only
NS = "company.team"
SETTINGS = f"flows: [flows/]\nnamespace_files:\n  - {{source: files, namespace: {NS}}}\n"


def _env(url: str) -> dict[str, str]:
    return {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}


def test_ref_reads_the_gitattributes_of_the_commit_it_promotes(repo: GitRepo):
    """A rollback to a commit without line-ending or ident rules ships its scripts as that
    commit holds them, whatever rules the working tree has gained since."""
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/a.yml", flow_yaml(NS, "a"))
    repo.write("files/run.sh", "#!/bin/sh\necho hi\n")
    repo.write("files/id.txt", "$Id$\n")
    repo.commit("v1")
    repo.git("tag", "v1")
    repo.write(".gitattributes", "*.sh text eol=crlf\n*.txt ident\n")
    repo.commit("later rules")

    fake = FakeKestra()
    with serve(fake) as url:
        run = run_cli("apply", str(repo.path), "--ref", "v1", env=_env(url))
        assert run.code == 0, run.out + run.err
    assert fake.files[("main", NS)] == {"/run.sh": b"#!/bin/sh\necho hi\n", "/id.txt": b"$Id$\n"}
