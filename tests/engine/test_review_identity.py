"""Who a pull request's plan is made as (``review_identity``): the inventory whose recorded
origin is the reviewed repository, never one the request's own ``name`` picks."""

from __future__ import annotations

from kestra_promote.engine.promotion import review_identity
from kestra_promote.models import Inventory

HERE = "git.example.com/acme/flows"
OTHER = "git.example.com/acme/payroll"


def _inventories(name: str, **inventories: Inventory):
    return inventories.get(name), {n: i for n, i in inventories.items() if n != name}


def test_a_request_that_renames_itself_is_planned_as_production_knows_it():
    found = review_identity(_inventories("renamed", analytics=Inventory("analytics",
                                                                           origin=HERE)),
                            "renamed", "ssh.example.com/acme/flows")  # another host, one repo
    assert found.name == "analytics" and found.refusal is None
    assert "'name' 'renamed' is not used in a review" in found.warnings[0].message


def test_a_request_naming_an_inventory_of_another_repository_is_refused():
    found = review_identity(_inventories("payroll", payroll=Inventory("payroll", origin=OTHER)),
                            "payroll", HERE)
    assert found.name == "payroll"
    assert "holds another repository's objects" in (found.refusal or "")
    assert OTHER not in (found.refusal or "")  # the other source's repository is not named


def test_a_request_naming_an_inventory_without_origin_is_refused():
    found = review_identity(_inventories("kestra-promote-prod",
                                         **{"kestra-promote-prod": Inventory("x")}),
                            "kestra-promote-prod", HERE)
    assert "records no origin" in (found.refusal or "")


def test_a_new_source_keeps_its_name_and_a_review_outside_git_owns_nothing():
    assert review_identity((None, {}), "fresh", HERE).refusal is None
    assert review_identity(_inventories("old", old=Inventory("old", origin=HERE)), "old",
                           None).refusal is not None


def test_several_inventories_of_one_repository_need_the_request_to_name_one():
    both = {"a": Inventory("a", origin=HERE), "b": Inventory("b", origin=HERE)}
    assert review_identity(_inventories("b", **both), "b", HERE).name == "b"
    found = review_identity(_inventories("c", **both), "c", HERE)
    assert "2 inventories of this repository (a, b)" in (found.refusal or "")


def test_a_folder_of_the_repository_is_a_source_of_its_own():
    found = review_identity(_inventories("x", whole=Inventory("whole", origin=HERE)), "x",
                            HERE + ":flows")
    assert found.name == "x" and found.refusal is None
