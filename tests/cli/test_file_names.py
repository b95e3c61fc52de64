"""Namespace files keep their Git names on the target, or are refused with the reason.

Kestra 1.3 passes a file's ``path`` through ``URLEncoder`` and decodes the URI's escapes back:
every character comes back as sent, except a space, which is stored as ``+``
(``target/filenames.py``; the fake server does the same).
"""

from __future__ import annotations

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve

pytestmark = pytest.mark.fake_only
NS = "company.team"
SETTINGS = ("flows: [flows/]\nprune: true\n"
            f"namespace_files:\n  - {{source: files, namespace: {NS}}}\n")
# what URLEncoder writes as an escape (or '+' for '+' itself: %2B), all given back by 1.3
ESCAPED = {"c++.txt": "plus", "100%.txt": "percent", "café.txt": "accent", "a&b.txt": "amp",
           "q?x=1#y.txt": "query"}
VERSIONS = ["1.3.19", "2.0.3"]


def _env(url: str) -> dict[str, str]:
    return {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}


def _repo(repo: GitRepo, files: dict[str, str]) -> None:
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/a.yml", flow_yaml(NS, "a"))
    for name, text in files.items():
        repo.write(f"files/{name}", text)
    repo.commit()


@pytest.mark.parametrize("version", VERSIONS)
def test_names_kestra_gives_back_converge_and_are_deleted_on_both_versions(repo, version):
    _repo(repo, ESCAPED)
    fake = FakeKestra(version=version)
    with serve(fake) as url:
        first = run_cli("apply", str(repo.path), env=_env(url))
        assert first.code == 0, first.out + first.err
        assert fake.files[("main", NS)] == {f"/{n}": t.encode() for n, t in ESCAPED.items()}
        again = run_cli("apply", str(repo.path), env=_env(url))
        assert again.code == 0 and "No changes. The target matches Git" in again.out, again.out
        assert "unmanaged" not in again.out
        (repo.path / "files" / "c++.txt").unlink()
        (repo.path / "files" / "café.txt").unlink()
        repo.commit("fewer files")
        pruned = run_cli("apply", str(repo.path), env=_env(url))
        assert pruned.code == 0, pruned.out + pruned.err
        assert "2 deleted" in pruned.out
        assert sorted(fake.files[("main", NS)]) == ["/100%.txt", "/a&b.txt", "/q?x=1#y.txt"]


def test_a_space_in_a_file_name_is_kept_on_kestra_2(repo):
    _repo(repo, {"my file.txt": "hello", "my dir/x.txt": "x"})
    fake = FakeKestra(version="2.0.3")
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        assert sorted(fake.files[("main", NS)]) == ["/my dir/x.txt", "/my file.txt"]
        again = run_cli("apply", str(repo.path), env=_env(url))
        assert "No changes. The target matches Git" in again.out, again.out
        (repo.path / "files" / "my file.txt").unlink()
        repo.commit("gone")
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        assert sorted(fake.files[("main", NS)]) == ["/my dir/x.txt"]


def test_a_space_in_a_file_name_is_refused_on_kestra_1_3_with_the_reason(repo):
    """1.3 would store '/my file.txt' as '/my+file.txt': each run uploaded it again, listed the
    '+' name as unmanaged, and said every object matched Git."""
    _repo(repo, {"my file.txt": "hello", "ok.txt": "ok"})
    fake = FakeKestra(version="1.3.19")
    with serve(fake) as url:
        for command in ("plan", "apply", "apply"):
            run = run_cli(command, str(repo.path), env=_env(url))
            assert run.code == 1, run.out + run.err
            assert "matches Git" not in run.out + run.err
            assert (f"{NS}:/my file.txt (files/my file.txt): Kestra 1.3 stores each space of a "
                    "namespace file's name as '+'") in run.out
            assert "would be written as '/my+file.txt'" in run.out
            assert "rename it without spaces, or promote to Kestra 2.0" in run.out
        assert fake.files == {} and fake.writes() == []
        (repo.path / "files" / "my file.txt").rename(repo.path / "files" / "my_file.txt")
        repo.commit("renamed")
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        again = run_cli("apply", str(repo.path), env=_env(url))
        assert "No changes. The target matches Git" in again.out, again.out
        assert sorted(fake.files[("main", NS)]) == ["/my_file.txt", "/ok.txt"]
