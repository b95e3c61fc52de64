"""The local fake (`python -m tests.fake_kestra`) knows a full Kestra image's plugins by default,
so that real flows can be tried on it; `--plugins slim` gives a slim image's."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, FIXTURES, GitRepo, run_cli
from fake_kestra import FakeKestra, serve
from fake_kestra.__main__ import PLUGINS, _banner, _parser

# Flows written for these tests in the format of Kestra's published blueprints
# (tests/fixtures/full_image, see its README): each uses plugins only a full image has and ends
# with the blueprint metadata `extend:`, which Kestra refuses in a flow
FULL_IMAGE_FLOWS = sorted((FIXTURES / "full_image" / "flows").glob("*.yaml"))


def _without_metadata(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[:text.index("\nextend:") + 1]


def _fake(*argv: str) -> FakeKestra:
    """The fake as `python -m tests.fake_kestra ARGV` makes it."""
    args = _parser().parse_args(list(argv))
    return FakeKestra(version=args.version, username=FAKE_USER, password=FAKE_PASSWORD,
                      plugins=PLUGINS[args.plugins])


def _validate(fake: FakeKestra, repo: GitRepo):
    with serve(fake) as url:
        env = {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}
        return run_cli("validate", str(repo.path), env=env)


@pytest.mark.parametrize("version", ["2.0", "1.3"])
def test_full_image_flows_pass_the_default_fake_and_not_a_slim_one(repo: GitRepo, version: str):
    assert len(FULL_IMAGE_FLOWS) >= 5
    for path in FULL_IMAGE_FLOWS:
        repo.write(f"flows/{path.name}", _without_metadata(path))
    repo.commit()

    accepted = _validate(_fake("--version", version), repo)

    assert accepted.code == 0, accepted.err
    assert f"Valid: {len(FULL_IMAGE_FLOWS)} flow(s)" in accepted.out

    refused = _validate(_fake("--version", version, "--plugins", "slim"), repo)

    assert refused.code == 1
    assert f"rejected {len(FULL_IMAGE_FLOWS)} of {len(FULL_IMAGE_FLOWS)} flow(s)" in refused.err
    for name, plugin in (("postgres-daily-orders.yaml", "io.kestra.plugin.jdbc.postgresql.Query"),
                         ("dbt-build-from-git.yaml", "io.kestra.plugin.dbt.cli.DbtCLI")):
        assert name in refused.err and f"Invalid type: {plugin}" in refused.err, refused.err


def test_blueprint_metadata_is_still_refused_as_kestra_refuses_it(repo: GitRepo):
    path = FIXTURES / "full_image" / "flows" / "dbt-build-from-git.yaml"
    repo.write("flows/dbt-build-from-git.yaml", path.read_text(encoding="utf-8"))  # with `extend:`
    repo.commit()

    refused = _validate(_fake(), repo)

    assert refused.code == 1
    assert 'Unrecognized field "extend"' in refused.err, refused.err


def test_the_banner_says_which_plugins_the_fake_knows():
    full = _banner("http://127.0.0.1:8080", "2.0.3", "u", "p")
    slim = _banner("http://127.0.0.1:8080", "2.0.3", "u", "p", "slim")

    assert "Plugins: a full image's (core, and the " in full
    assert "--plugins slim for a slim image's" in full
    assert "Plugins: a slim image's (core, plugin-scripts and plugin-git only)" in slim


def test_the_plugin_list_says_where_it_comes_from():
    text = (Path(__file__).parents[1] / "fake_kestra" / "full_image_plugins.txt").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    types = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert "`.plugins` of kestra-io/kestra at releases/v1.3.x" in "\n".join(header)
    assert any("kestra-io/plugin-jdbc" in line for line in header)
    assert len(types) > 500 and types == sorted(set(types))
    assert all(t.startswith("io.kestra.") and " " not in t for t in types)
