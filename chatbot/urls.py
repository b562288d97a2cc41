from django.contrib import admin
from django.urls import include, path

from chatbot.analytics.metrics import metrics_view
from chatbot.api.api import api
from chatbot.conversations import views

urlpatterns = [
    path("", views.demo_page, name="demo"),
    path("healthz", views.healthz, name="healthz"),
    path("api/widget/sessions", views.create_session, name="widget-session"),
    path("admin/", admin.site.urls),
    path("agent/", include("chatbot.agents.urls")),
    path("api/v1/", api.urls),
    # --- Analytics (issue 15): the Reports page and Prometheus metrics ---
    path("agent/reports/", include("chatbot.analytics.urls")),
    path("metrics", metrics_view, name="metrics"),
]
