"""Migrations change schemas; demo content and permissions come from elsewhere."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from chatbot.agents.demo import STARTERS, add_starter_canned_responses
from chatbot.agents.models import CannedResponse

pytestmark = pytest.mark.django_db


def test_a_migrated_database_holds_no_demo_canned_responses():
    # They name the demo store's order format (NW-123456): a production database must not get them.
    assert not CannedResponse.objects.filter(text__contains="NW-123456").exists()
    assert not CannedResponse.objects.exists()


def test_the_demo_bootstrap_adds_the_starters_once_and_keeps_staff_edits():
    assert add_starter_canned_responses() == len(STARTERS)
    CannedResponse.objects.filter(shortcut="hi").update(text="Hello from our team!")
    assert add_starter_canned_responses() == 0
    assert CannedResponse.objects.get(shortcut="hi").text == "Hello from our team!"
    assert CannedResponse.objects.count() == len(STARTERS)


def test_migrate_gives_the_agents_group_its_dashboard_permission():
    Group.objects.filter(name="Agents").delete()
    call_command("migrate", verbosity=0)  # nothing to apply: post_migrate still runs
    group = Group.objects.get(name="Agents")
    assert list(group.permissions.values_list("codename", flat=True)) == ["work_in_dashboard"]
