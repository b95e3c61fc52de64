"""Reading a source folder: which files count, and every problem reported at once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import GitRepo, flow_yaml
from kestra_promote.errors import SourceError
from kestra_promote.git.gitinfo import read_commit
from kestra_promote.git.ignore import IgnoreRules
from kestra_promote.models import FlowKey
from kestra_promote.git.source import parse_flow, read_source


def write(folder: Path, relative: str, text: str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(SourceError) as caught:
        read_source(folder)
    return [str(p) for p in caught.value.problems]


def test_reads_yml_and_yaml_recursively_keeping_the_exact_text(tmp_path: Path):
    write(tmp_path, "a.yml", flow_yaml("company", "a"))
    text = "# leading comment\r\n" + flow_yaml("company.team", "b").replace("\n", "\r\n")
    write(tmp_path, "deep/er/b.YAML", text)
    write(tmp_path, "notes.txt", "not a flow")
    source = read_source(tmp_path)
    assert list(source.flows) == [FlowKey("company", "a"), FlowKey("company.team", "b")]
    b = source.flows[FlowKey("company.team", "b")]
    assert (b.path, b.source) == ("deep/er/b.YAML", (tmp_path / "deep/er/b.YAML").read_bytes().decode())


def test_identity_comes_from_the_content_not_the_file_name(tmp_path: Path):
    write(tmp_path, "misnamed.yml", flow_yaml("company", "real-id"))
    assert list(read_source(tmp_path).flows) == [FlowKey("company", "real-id")]


def test_hidden_folders_and_files_are_skipped(tmp_path: Path):
    write(tmp_path, ".git/config.yml", "not: a flow")
    write(tmp_path, ".github/workflows/ci.yml", "on: push")
    write(tmp_path, ".hidden.yml", "x: 1")
    write(tmp_path, "a.yml", flow_yaml("company", "a"))
    assert list(read_source(tmp_path).flows) == [FlowKey("company", "a")]


def test_kestraignore_excludes_files_and_folders(tmp_path: Path):
    write(tmp_path, ".kestraignore", "# CI files\nci/\n*.draft.yml\n/top-only.yml\n!keep.draft.yml\n")
    write(tmp_path, "ci/pipeline.yml", "stages: []")
    write(tmp_path, "x.draft.yml", "broken: [")
    write(tmp_path, "keep.draft.yml", flow_yaml("company", "kept"))
    write(tmp_path, "top-only.yml", "broken: [")
    write(tmp_path, "sub/top-only.yml", flow_yaml("company", "nested"))
    assert sorted(k.id for k in read_source(tmp_path).flows) == ["kept", "nested"]


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "ignored"),
    [
        pytest.param("*.yml", "a/b.yml", False, True, id="unanchored-glob-matches-any-depth"),
        pytest.param("/b.yml", "a/b.yml", False, False, id="anchored-matches-root-only"),
        pytest.param("a/*.yml", "a/b.yml", False, True, id="inner-slash-anchors"),
        pytest.param("a/*.yml", "x/a/b.yml", False, False, id="inner-slash-not-deeper"),
        pytest.param("build/", "build", True, True, id="dir-pattern-matches-dir"),
        pytest.param("build/", "build", False, False, id="dir-pattern-not-file"),
        pytest.param("**/tmp/*.yml", "a/b/tmp/c.yml", False, True, id="double-star-prefix"),
        pytest.param("a/**", "a/b/c.yml", False, True, id="double-star-suffix"),
        pytest.param("f?.yml", "f1.yml", False, True, id="question-mark"),
        pytest.param("f[0-9].yml", "fx.yml", False, False, id="bracket-class"),
    ],
)
def test_ignore_patterns(pattern: str, path: str, is_dir: bool, ignored: bool):
    assert IgnoreRules([pattern]).ignored(path, is_dir=is_dir) is ignored


def test_last_matching_ignore_rule_wins():
    rules = IgnoreRules(["*.yml", "!keep.yml", "keep.yml"])
    assert rules.ignored("keep.yml", is_dir=False)
    assert not IgnoreRules(["*.yml", "!keep.yml"]).ignored("keep.yml", is_dir=False)


def test_every_problem_is_collected_before_failing(tmp_path: Path):
    write(tmp_path, "syntax.yml", "id: a\nnamespace: b\ntasks:\n  - id: x\n   bad: indent\n")
    write(tmp_path, "list.yml", "- id: a\n")
    write(tmp_path, "scalar.yml", "just text\n")
    write(tmp_path, "empty.yml", "")
    write(tmp_path, "two.yml", flow_yaml("a", "one") + "---\n" + flow_yaml("a", "two"))
    write(tmp_path, "noid.yml", "namespace: a\ntasks: [{id: t, type: x}]\n")
    write(tmp_path, "nons.yml", "id: a\ntasks: [{id: t, type: x}]\n")
    write(tmp_path, "notasks.yml", "id: a\nnamespace: a\n")
    write(tmp_path, "emptytasks.yml", "id: a\nnamespace: a\ntasks: []\n")
    write(tmp_path, "maptasks.yml", "id: a\nnamespace: a\ntasks: {id: t}\n")
    write(tmp_path, "badid.yml", flow_yaml("company", "bad id"))
    write(tmp_path, "badns.yml", flow_yaml("Company", "x"))
    write(tmp_path, "longid.yml", flow_yaml("company", "x" * 101))
    write(tmp_path, "listid.yml", "id: [a]\nnamespace: a\ntasks: [{id: t}]\n")
    write(tmp_path, "dupkey.yml", flow_yaml("company", "dup") + "tasks: []\n")
    (tmp_path / "latin1.yml").write_bytes("id: caf\xe9\n".encode("latin-1"))

    found = problems_of(tmp_path)
    # the parser's wording differs between libyaml and pure Python; the position does not
    syntax = next(i for i, p in enumerate(found) if p.startswith("syntax.yml"))
    assert found[syntax].startswith("syntax.yml:5:4: YAML syntax error: while parsing a block")
    found[syntax] = "syntax.yml:5:4: YAML syntax error: (the parser's own words)"

    assert found == [
        "badid.yml:1:5: company/bad id: flow id 'bad id' is invalid: use letters, digits, '.', "
        "'_' and '-', starting with a letter or digit",
        "badns.yml:2:12: Company/x: namespace 'Company' is invalid: use lower-case letters, "
        "digits, '.', '_' and '-', starting with a letter or digit",
        "dupkey.yml:7:1: company/dup: duplicate key 'tasks' (Kestra rejects repeated keys)",
        "empty.yml: empty file: a flow needs id, namespace and tasks. If it is not a flow, "
        "leave it out: name the folders that hold flows in kestra-promote.yml (flows: "
        "[flows/]), or add the line '/empty.yml' to .kestraignore",
        "emptytasks.yml:3:8: a/a: 'tasks' must be a non-empty list of tasks",
        "latin1.yml: not UTF-8 text (byte 7): save the file as UTF-8",
        "list.yml:1:1: does not look like a Kestra flow (a list, not a mapping with id, "
        "namespace and tasks). If it is not a flow, leave it out: name the folders that hold "
        "flows in kestra-promote.yml (flows: [flows/]), or add the line '/list.yml' to "
        ".kestraignore",
        "listid.yml:1:5: 'id' must be a text value",
        f"longid.yml:1:5: company/{'x' * 101}: flow id '{'x' * 101}' is longer than 100 characters",
        "maptasks.yml:3:8: a/a: 'tasks' must be a non-empty list of tasks",
        "noid.yml: missing required key 'id'",
        "nons.yml: missing required key 'namespace'",
        "notasks.yml: a/a: missing required key 'tasks'",
        "scalar.yml:1:1: does not look like a Kestra flow (a single value, not a mapping with "
        "id, namespace and tasks). If it is not a flow, leave it out: name the folders that hold "
        "flows in kestra-promote.yml (flows: [flows/]), or add the line '/scalar.yml' to "
        ".kestraignore",
        "syntax.yml:5:4: YAML syntax error: (the parser's own words)",
        "two.yml: holds 2 YAML documents: put exactly one flow per file",
    ]


def test_the_same_identity_in_two_files_is_reported_in_both(tmp_path: Path):
    write(tmp_path, "a.yml", flow_yaml("company", "etl"))
    write(tmp_path, "b/a-copy.yml", flow_yaml("company", "etl", "other"))
    assert problems_of(tmp_path) == [
        "a.yml: company/etl: the same flow is defined in 2 files (a.yml, b/a-copy.yml): keep one",
        "b/a-copy.yml: company/etl: the same flow is defined in 2 files (a.yml, b/a-copy.yml): "
        "keep one",
    ]


def test_symlinks_inside_are_read_and_those_escaping_are_refused(tmp_path: Path):
    root, outside = tmp_path / "repo", tmp_path / "outside"
    write(outside, "secret.yml", flow_yaml("company", "outside"))
    write(outside, "dir/x.yml", flow_yaml("company", "outside-dir"))
    write(root, "real/a.yml", flow_yaml("company", "a"))
    os.symlink(root / "real/a.yml", root / "alias.yml")  # inside: fine, but a duplicate
    os.symlink(outside / "secret.yml", root / "escape.yml")
    os.symlink(outside / "dir", root / "escape-dir")
    os.symlink(root / "missing.yml", root / "broken.yml")
    found = problems_of(root)
    assert "escape.yml: symlink points outside the source folder; refusing to read it" in found
    assert "escape-dir: symlink to a folder outside the source folder" in found
    assert "broken.yml: broken symlink" in found
    assert any(p.startswith("alias.yml: company/a: the same flow is defined in 2 files") for p in found)


def test_a_missing_folder_is_an_error(tmp_path: Path):
    assert problems_of(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a folder"]


def test_byte_order_mark_is_dropped(tmp_path: Path):
    (tmp_path / "bom.yml").write_bytes(b"\xef\xbb\xbf" + flow_yaml("company", "bom").encode())
    assert read_source(tmp_path).flows[FlowKey("company", "bom")].source.startswith("id: bom")


def test_numbers_as_ids_are_read_as_text_like_kestra_does():
    flow, problems = parse_flow("id: 123\nnamespace: company\ntasks: [{id: t}]\n", "n.yml")
    assert problems == [] and flow is not None and flow.key == FlowKey("company", "123")


# -- commit ------------------------------------------------------------------------------------


def test_commit_of_a_branch_a_subfolder_and_packed_refs(repo: GitRepo):
    repo.write("flows/a.yml", flow_yaml("company", "a"))
    sha = repo.commit()
    assert read_commit(repo.path) == sha
    assert read_commit(repo.path / "flows") == sha
    assert read_source(repo.path / "flows").commit == sha
    repo.git("pack-refs", "--all")
    assert not (repo.path / ".git/refs/heads/main").exists()
    assert read_commit(repo.path) == sha


def test_commit_of_a_detached_head_and_a_worktree(repo: GitRepo, tmp_path: Path):
    repo.write("a.yml", flow_yaml("company", "a"))
    first = repo.commit("one")
    repo.write("a.yml", flow_yaml("company", "a", "two"))
    second = repo.commit("two")
    repo.git("checkout", "-q", first)
    assert read_commit(repo.path) == first
    repo.git("checkout", "-q", "main")
    worktree = tmp_path / "wt"
    repo.git("worktree", "add", "-q", "-b", "other", str(worktree), first)
    assert (worktree / ".git").is_file()
    assert read_commit(worktree) == first
    assert read_commit(repo.path) == second


def test_no_commit_outside_git_or_before_the_first_commit(tmp_path: Path, repo: GitRepo):
    assert read_commit(tmp_path / "elsewhere") is None
    assert read_commit(repo.path) is None  # a branch without commits


def test_a_commit_given_explicitly_wins(tmp_path: Path):
    write(tmp_path, "a.yml", flow_yaml("company", "a"))
    assert read_source(tmp_path, commit="f" * 40).commit == "f" * 40


# -- whole values: a final newline is not part of a valid id or namespace ---------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('id: "etl\\n"\nnamespace: company\ntasks: [{id: t}]\n',
                     "n.yml:1:5: company/etl\n: flow id 'etl\\n' is invalid: use letters, digits, "
                     "'.', '_' and '-', starting with a letter or digit", id="flow-id"),
        pytest.param('id: etl\nnamespace: "company\\n"\ntasks: [{id: t}]\n',
                     "n.yml:2:12: company\n/etl: namespace 'company\\n' is invalid: use lower-case "
                     "letters, digits, '.', '_' and '-', starting with a letter or digit",
                     id="namespace"),
    ],
)
def test_a_trailing_newline_makes_an_id_or_namespace_invalid(text: str, message: str):
    flow, problems = parse_flow(text, "n.yml")
    assert flow is None and [str(p) for p in problems] == [message]


def test_a_folder_named_after_a_namespace_with_a_trailing_newline_is_refused(tmp_path: Path):
    write(tmp_path, "kestra-promote.yml", "flows: []\nnamespace_files: [{source: files/*}]\n")
    write(tmp_path, "files/company\n/x.py", "x")
    assert problems_of(tmp_path) == [
        "files/company\n: folder name is not a namespace: namespace 'company\\n' is invalid: use "
        "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"]


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        pytest.param("secret", "secret\n", False, id="whole-name-only"),
        pytest.param("*.pem", "key.pem\n", False, id="suffix-is-the-end"),
        pytest.param("a/**", "a/b\nc.yml", True, id="double-star-any-character"),
        pytest.param("a/**/c.yml", "a/x\ny/c.yml", True, id="double-star-slash-any-character"),
    ],
)
def test_ignore_patterns_match_whole_paths(pattern: str, path: str, ignored: bool):
    assert IgnoreRules([pattern]).ignored(path, is_dir=False) is ignored


def test_a_symlink_whose_own_path_is_ignored_is_left_alone(tmp_path: Path):
    write(tmp_path, ".kestraignore", "vendor/\n")
    write(tmp_path, ".git/config", "secret")
    write(tmp_path, "a.yml", flow_yaml("company", "a"))
    os.symlink(tmp_path / ".git", tmp_path / "vendor")
    assert list(read_source(tmp_path).flows) == [FlowKey("company", "a")]


def test_ref_from_a_subfolder_of_the_repository(repo: GitRepo, tmp_path: Path):
    from kestra_promote.git import gitref
    from kestra_promote.errors import SettingsError

    repo.write("prod/a.yml", "id: a\nnamespace: company\ntasks: [{id: t}]\n# v1\n")
    first = repo.commit("v1")
    repo.git("tag", "v1")
    repo.write("prod/a.yml", "id: a\nnamespace: company\ntasks: [{id: t}]\n# v2\n")
    repo.commit("v2")
    with gitref.checkout(str(repo.path / "prod"), "v1") as (folder, commit, _):
        assert commit == first
        assert (Path(folder) / "a.yml").read_text().endswith("# v1\n")
    with pytest.raises(SettingsError) as caught:
        with gitref.checkout(str(repo.path / "prod"), "no-such-tag"):
            pass
    assert str(caught.value) == f"no commit, branch or tag named 'no-such-tag' in {repo.path}"
    with pytest.raises(SettingsError, match="is in none"):
        with gitref.checkout(str(tmp_path / "elsewhere"), "v1"):
            pass


def test_ref_holds_the_committed_bytes_whatever_gitattributes_say(repo: GitRepo):
    """export-ignore and export-subst shape `git archive`, never what --ref promotes."""
    from kestra_promote.git import gitref

    repo.write("prod/a.yml", flow_yaml("company", "a"))
    repo.write("prod/b.yml", "id: b\nnamespace: company\ntasks: [{id: t}]\n# $Format:%H$\n")
    repo.write(".gitattributes", "prod/a.yml export-ignore\nprod/b.yml export-subst\n")
    os.symlink("a.yml", repo.path / "prod/link.yml")
    commit = repo.commit()
    with gitref.checkout(str(repo.path / "prod"), "HEAD") as (folder, at, _):
        assert at == commit
        assert (Path(folder) / "a.yml").read_text() == flow_yaml("company", "a")
        assert (Path(folder) / "b.yml").read_text().endswith("# $Format:%H$\n")
        assert os.readlink(Path(folder) / "link.yml") == "a.yml"
        assert sorted(os.listdir(folder)) == ["a.yml", "b.yml", "link.yml"]


def test_ref_names_a_missing_subfolder_and_refuses_an_empty_ref(repo: GitRepo):
    from kestra_promote.git import gitref
    from kestra_promote.errors import SettingsError

    repo.write("README", "x\n")
    before = repo.commit()
    repo.write("prod/a.yml", flow_yaml("company", "a"))
    repo.commit()
    with pytest.raises(SettingsError) as caught:
        with gitref.checkout(str(repo.path / "prod"), before[:8]):
            pass
    assert str(caught.value) == f"prod holds no file at {before[:8]} ({before[:12]}) in {repo.path}"
    for empty in ("", "  "):
        with pytest.raises(SettingsError, match="--ref needs a commit, branch or tag name"):
            with gitref.checkout(str(repo.path / "prod"), empty):
                pass


def _commit_with_entry(repo: GitRepo, name: bytes, content: bytes) -> str:
    """A commit whose tree holds ``name`` as Git itself would never write it (a crafted or
    fetched-unchecked object)."""
    def git(*args: str, data: bytes = b"") -> str:
        return subprocess.run(["git", *args], cwd=repo.path, input=data, capture_output=True,
                              check=True).stdout.decode().strip()

    blob = git("hash-object", "-w", "--stdin", data=content)
    tree = git("hash-object", "-t", "tree", "-w", "--literally", "--stdin",
               data=b"100644 " + name + b"\0" + bytes.fromhex(blob))
    return git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit-tree", tree,
               "-m", "crafted")


@pytest.mark.parametrize("name", [b"../escaped.yml", b".git", b"/tmp/escaped.yml"])
def test_ref_never_writes_outside_its_folder(repo: GitRepo, tmp_path: Path, name: bytes):
    from kestra_promote.git import gitref
    from kestra_promote.errors import SettingsError

    repo.write("a.yml", flow_yaml("company", "a"))
    repo.commit()
    commit = _commit_with_entry(repo, name, b"id: x\n")
    with pytest.raises(SettingsError, match="invalid path"):
        with gitref.checkout(str(repo.path), commit):
            pass
    assert not (repo.path.parent / "escaped.yml").exists()


def test_ref_refuses_a_submodule_under_source(repo: GitRepo, tmp_path: Path):
    from kestra_promote.git import gitref
    from kestra_promote.errors import SettingsError

    repo.write("a.yml", flow_yaml("company", "a"))
    first = repo.commit()
    # a gitlink entry, as `git submodule add` makes: the files are another repository's
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{first},shared")
    repo.git("commit", "-q", "-m", "submodule")
    with pytest.raises(SettingsError, match="cannot read submodule shared"):
        with gitref.checkout(str(repo.path), "HEAD"):
            pass
