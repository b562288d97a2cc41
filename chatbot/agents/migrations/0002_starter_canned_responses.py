"""A few starter canned responses so a fresh install shows how they work; edit or delete them in the admin."""

from django.db import migrations

STARTERS = [
    ("hi", "Greeting", "Hi, thanks for waiting! I'm here to help. What can I do for you?"),
    ("order", "Ask for the order number", "Could you give me your order number? It looks like NW-123456 and is in your confirmation email."),
    ("email", "Ask for an email address", "Could you leave your email address so we can follow up if we get disconnected?"),
    ("bye", "Closing", "Is there anything else I can help with? Have a great day!"),
]


def add_starters(apps, schema_editor):
    CannedResponse = apps.get_model("agents", "CannedResponse")
    for shortcut, title, text in STARTERS:
        CannedResponse.objects.get_or_create(shortcut=shortcut, defaults={"title": title, "text": text})


def remove_starters(apps, schema_editor):
    apps.get_model("agents", "CannedResponse").objects.filter(shortcut__in=[s for s, _, _ in STARTERS]).delete()


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]
    operations = [migrations.RunPython(add_starters, remove_starters)]
