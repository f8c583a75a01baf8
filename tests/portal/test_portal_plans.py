"""A plan's changes in the portal, filtered by kind, attribute and text
(without JavaScript: the filters are a GET form)."""

from __future__ import annotations

from idsync.domain.principals import Principal
from idsync.services import requests
from tests.portal.conftest import Portal
from tests.portal.test_portal_security import signed_in


def test_a_plans_changes_are_filtered_by_kind_attribute_and_text(portal: Portal) -> None:
    _run_id, request_id = portal.raise_request()  # plan: Ada renamed (update of uid=1), Grace created (uid=3)
    plan_id = requests.get(portal.world.ws.acting_as(Principal("audrey", "user")), request_id).plans[0].plan_id
    with signed_in(portal, "audrey") as audrey:
        every = audrey.get(f"/plans/{plan_id}").text
        assert "uid=1," in every and "uid=3," in every

        hopper = audrey.get(f"/plans/{plan_id}", params={"text": "HOPPER"}).text
        assert "uid=3," in hopper and "uid=1," not in hopper

        by_attribute = audrey.get(f"/plans/{plan_id}", params={"attribute": "SN", "op": "update"}).text
        assert "uid=1," in by_attribute and "uid=3," not in by_attribute

        nothing = audrey.get(f"/plans/{plan_id}", params={"attribute": "mail"}).text
        assert "No change matches the filters." in nothing

        wrong = audrey.get(f"/plans/{plan_id}", params={"op": "rename"})
        assert wrong.status_code == 422
        assert "&#39;rename&#39; is not a kind of change; the kinds are create, update" in wrong.text
