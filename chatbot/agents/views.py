"""The agent dashboard's pages and actions. Pages are server-rendered; the
dashboard's script swaps fragments of them in and posts the same forms with
fetch (CSRF header) so everything also works as plain forms."""

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chatbot.agents import help_center, names, presence, services
from chatbot.agents.models import CannedResponse
from chatbot.agents.services import AgentActionError
from chatbot.conversations import events
from chatbot.conversations.models import Conversation, Message
from chatbot.nlu import explanations
from chatbot.nlu.models import Explanation, Intent
from chatbot.replies import services as suggestions

HTTP_STATUS = {
    "not_found": 404,
    "empty_text": 400,
    "text_too_long": 400,
    "unknown_intent": 400,
    "unknown_message": 400,
    "unknown_agent": 400,
}


def agent_required(view):
    """Agents only: anonymous visitors of a page are sent to log in, everyone else gets 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated and request.method == "GET":
            return redirect_to_login(request.get_full_path(), reverse("agents:login"))
        if not services.is_agent(request.user):
            return render(request, "agents/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


class AgentLoginForm(AuthenticationForm):
    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not services.is_agent(user):
            raise forms.ValidationError("This account may not use the agent dashboard.", code="not_agent")
        if not names.has_display_name(user):  # visitors see it instead of the login name (issue 13)
            raise forms.ValidationError(
                "This account has no display name. Ask an admin to set its first name, which customers see.",
                code="no_display_name",
            )


class LoginView(auth_views.LoginView):
    template_name = "agents/login.html"
    authentication_form = AgentLoginForm

    def get_default_redirect_url(self) -> str:
        return reverse("agents:dashboard")


class LogoutView(auth_views.LogoutView):
    next_page = "agents:login"


def _conversation_or_404(conversation_id) -> Conversation:
    conversation = Conversation.objects.select_related("visitor", "assigned_agent").filter(pk=conversation_id).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _conversation_context(request: HttpRequest, conversation: Conversation) -> dict:
    # Which buttons show is the model's rules (Conversation.can_*), the same the services enforce.
    return {
        "conversation": conversation,
        "transcript": services.transcript(conversation),
        "intents": list(Intent.objects.values_list("name", flat=True)),
        "mine": conversation.is_held_by(request.user),
        "can_take": conversation.can_take(request.user),
        "can_hand_back": conversation.can_hand_back(request.user),
        "can_close": conversation.can_close(request.user),
        "threshold": settings.INTENT_CONFIDENCE_THRESHOLD,
        **_inbox_conversation_context(request, conversation),
    }


def _inbox_conversation_context(request: HttpRequest, conversation: Conversation) -> dict:
    """The side panel's contact history and the colleagues a conversation can go to."""
    mine = conversation.is_held_by(request.user)
    return {
        "history": services.contact_history(conversation),
        "colleagues": [agent for agent in presence.online_agents() if agent.pk != request.user.pk] if mine else [],
    }


def _inbox_context(request: HttpRequest) -> dict:
    view = request.GET.get("view", "")
    view = view if view in services.INBOX_VIEWS else ""
    query = request.GET.get("q", "").strip()
    context = {"views": services.INBOX_VIEWS, "view": view, "q": query}
    if view or query:
        context["results"] = services.inbox(request.user, view, query)
    return context


def _page_context(request: HttpRequest) -> dict:
    return {
        "queue": services.queue_for(request.user, _queue_pages(request)),
        **_inbox_context(request),
        "online": presence.online_agents(),
        "me": events.display_name(request.user),
        "canned": list(CannedResponse.objects.values("shortcut", "title", "text")),
        "intent_names": list(Intent.objects.values_list("name", flat=True)),
    }


@require_GET
@agent_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "agents/dashboard.html", _page_context(request))


@require_GET
@agent_required
def conversation(request: HttpRequest, conversation_id) -> HttpResponse:
    context = _conversation_context(request, _conversation_or_404(conversation_id))
    if request.GET.get("fragment"):
        return render(request, "agents/_conversation.html", context)
    return render(request, "agents/dashboard.html", {**_page_context(request), **context})


@require_GET
@agent_required
def queue(request: HttpRequest) -> HttpResponse:
    context = {"queue": services.queue_for(request.user, _queue_pages(request)), **_inbox_context(request)}
    return render(request, "agents/_queue.html", context)


def _queue_pages(request: HttpRequest) -> dict[str, str]:
    """?waiting_page=2 and the like: the page of each queue section to show."""
    return {name: request.GET.get(f"{name}_page") for name in services.QUEUE_SECTIONS}


# --- Actions ----------------------------------------------------------------------


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _act(request: HttpRequest, conversation_id, action, success: str) -> HttpResponse:
    """Run one action; answer JSON to the dashboard's script, or redirect back for a plain form."""
    try:
        result = action()
    except AgentActionError as error:
        if _wants_json(request):
            return JsonResponse(
                {"error": error.code, "message": error.message}, status=HTTP_STATUS.get(error.code, 409)
            )
        messages.error(request, error.message)
    else:
        if _wants_json(request):
            body = {"ok": True}
            if hasattr(result, "seq"):
                body["message"] = events.agent_message_frame(result)
            return JsonResponse(body)
        if success:
            messages.success(request, success)
    return redirect("agents:conversation", conversation_id=conversation_id)


@require_POST
@agent_required
def take(request: HttpRequest, conversation_id) -> HttpResponse:
    return _act(request, conversation_id, lambda: services.take_over(conversation_id, request.user), "")


@require_POST
@agent_required
def hand_back(request: HttpRequest, conversation_id) -> HttpResponse:
    return _act(
        request, conversation_id, lambda: services.hand_back(conversation_id, request.user), "Handed back to the bot."
    )


@require_POST
@agent_required
def close(request: HttpRequest, conversation_id) -> HttpResponse:
    return _act(request, conversation_id, lambda: services.close(conversation_id, request.user), "Conversation closed.")


@require_POST
@agent_required
def reply(request: HttpRequest, conversation_id) -> HttpResponse:
    text = request.POST.get("text")

    def send():
        message = services.reply(conversation_id, request.user, text)
        suggestions.record_outcome_safely(
            message, request.POST.get("suggestion_event_id"), request.POST.get("suggestion_inserted") == "1"
        )
        return message

    return _act(request, conversation_id, send, "")


@require_POST
@agent_required
def note(request: HttpRequest, conversation_id) -> HttpResponse:
    text = request.POST.get("text")
    return _act(request, conversation_id, lambda: services.add_note(conversation_id, request.user, text), "")


@require_POST
@agent_required
def correct_intent(request: HttpRequest, conversation_id, message_id: int) -> HttpResponse:
    if not Conversation.objects.filter(pk=conversation_id, messages__pk=message_id).exists():
        raise Http404("No such message in this conversation.")
    intent = request.POST.get("intent")
    return _act(
        request,
        conversation_id,
        lambda: services.correct_intent(message_id, request.user, intent),
        f"Correction saved: {intent}.",
    )


@require_http_methods(["GET", "POST"])
def explanation(request: HttpRequest, conversation_id, message_id: int) -> HttpResponse:
    """Why the bot understood a visitor message as it did (and, when it asked the help
    center, why that answered or declined). POST asks for it: 200 with it
    when cached, else 202 while a task on the inference queue computes it (the result
    comes as an `explanation` frame on the agent socket; GET polls). Agents and staff only."""
    if not explanations.can_view(request.user):
        return JsonResponse({"error": "forbidden", "message": "Only agents see explanations."}, status=403)
    message = Message.objects.filter(
        pk=message_id, conversation_id=conversation_id, sender=Message.Sender.VISITOR
    ).first()
    if message is None:
        return JsonResponse({"error": "not_found", "message": "No such visitor message here."}, status=404)
    if request.method == "POST":
        try:
            why = explanations.request_why(message.pk)
        except explanations.ExplanationRefused as exc:
            return JsonResponse({"error": "nothing_to_explain", "message": str(exc)}, status=409)
    else:
        why = explanations.cached_why(message)
        if why is None:
            return JsonResponse({"error": "not_requested", "message": "Ask for it with POST first."}, status=404)
    return JsonResponse(explanations.payload(why), status=202 if why.status == Explanation.Status.PENDING else 200)


@require_POST
@agent_required
def transfer(request: HttpRequest, conversation_id) -> HttpResponse:
    to = request.POST.get("to")
    return _act(request, conversation_id, lambda: services.transfer(conversation_id, request.user, to), "Transferred.")


# --- The help center beside the reply box ------------------------------------------------


@require_POST
@agent_required
def suggest_articles(request: HttpRequest, conversation_id) -> HttpResponse:
    """Ask for articles for the conversation's latest visitor message: 202 with its id
    (they come as an `articles` frame on the agent socket), 200 with none to ask for."""
    _conversation_or_404(conversation_id)
    message_id = help_center.latest_visitor_message_id(conversation_id)
    if message_id is None:
        return JsonResponse({"message_id": None})
    from chatbot.agents.tasks import enqueue_article_suggestions

    enqueue_article_suggestions(message_id)
    return JsonResponse({"message_id": message_id}, status=202)


@require_GET
@agent_required
def search_articles(request: HttpRequest) -> HttpResponse:
    try:
        found = help_center.search_articles(request.GET.get("q"))
    except help_center.SearchRefused as exc:
        return JsonResponse({"error": "empty_query", "message": str(exc)}, status=400)
    return JsonResponse({"articles": found})
