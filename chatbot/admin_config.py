"""django.contrib.admin with the project's admin site (optional TOTP for staff,
chatbot/admin_site.py); kept apart because an app config loads before any model."""

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    default_site = "chatbot.admin_site.StaffAdminSite"
