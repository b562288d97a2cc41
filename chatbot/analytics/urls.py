from django.urls import path

from chatbot.analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.reports_page, name="reports"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("unanswered/", views.unanswered, name="unanswered"),
    path("charts/<slug:name>.svg", views.chart, name="chart"),
    path("export/<slug:name>.csv", views.export, name="export"),
]
