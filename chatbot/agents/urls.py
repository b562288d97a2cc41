from django.urls import path

from chatbot.agents import views

app_name = "agents"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("queue/", views.queue, name="queue"),
    path("articles/", views.search_articles, name="search_articles"),
    path("c/<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("c/<uuid:conversation_id>/take", views.take, name="take"),
    path("c/<uuid:conversation_id>/hand-back", views.hand_back, name="hand_back"),
    path("c/<uuid:conversation_id>/close", views.close, name="close"),
    path("c/<uuid:conversation_id>/transfer", views.transfer, name="transfer"),
    path("c/<uuid:conversation_id>/reply", views.reply, name="reply"),
    path("c/<uuid:conversation_id>/note", views.note, name="note"),
    path("c/<uuid:conversation_id>/articles", views.suggest_articles, name="suggest_articles"),
    path("c/<uuid:conversation_id>/messages/<int:message_id>/intent", views.correct_intent, name="correct_intent"),
    path("c/<uuid:conversation_id>/messages/<int:message_id>/why", views.explanation, name="explanation"),
]
