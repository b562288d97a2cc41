"""Intents and their training examples: list, create, change, delete."""

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Router, Status

from chatbot.api import actions, auth, idempotency
from chatbot.api.endpoints import COMMON_PROBLEMS
from chatbot.api.problems import ApiProblem
from chatbot.api.schemas import ExampleIn, ExampleOut, IntentIn, IntentOut, IntentPatch, Problem
from chatbot.nlu.models import Intent, TrainingExample

router = Router(tags=["intents"])
PROBLEMS = {**COMMON_PROBLEMS, 404: Problem, 409: Problem}


def intent_out(intent: Intent) -> dict:
    return IntentOut.model_validate(intent, from_attributes=True).model_dump(mode="json")


def example_out(example: TrainingExample) -> dict:
    return ExampleOut.model_validate(
        {
            "id": example.pk,
            "intent": example.intent.name,
            "text": example.text,
            "source": example.source,
            "created_at": example.created_at,
        }
    ).model_dump(mode="json")


def _intent(name: str) -> Intent:
    intent = Intent.objects.filter(name=name).first()
    if intent is None:
        raise ApiProblem(404, "not_found", f"No intent named {name!r}.")
    return intent


@router.get("/intents", response={200: list[IntentOut], **COMMON_PROBLEMS}, auth=auth.read)
def list_intents(request: HttpRequest):
    """Every intent, by name. Scope: read."""
    return [intent_out(i) for i in Intent.objects.order_by("name")]


@router.post("/intents", response={201: IntentOut, **PROBLEMS}, auth=auth.admin)
def create_intent(request: HttpRequest, body: IntentIn):
    """A new intent (names: letters, digits, _ or -). Scope: admin. Honours Idempotency-Key."""
    if not actions.valid_intent_name(body.name):
        raise ApiProblem(422, "invalid_intent_name", "Intent names are letters, digits, _ or -.")

    def create():
        try:
            with transaction.atomic():
                intent = Intent.objects.create(name=body.name, description=body.description, handoff=body.handoff)
        except IntegrityError:
            raise ApiProblem(409, "intent_exists", f"An intent named {body.name!r} already exists.") from None
        return 201, intent_out(intent)

    return idempotency.run(request, create)


@router.get("/intents/{name}", response={200: IntentOut, **PROBLEMS}, auth=auth.read)
def get_intent(request: HttpRequest, name: str):
    """One intent. Scope: read."""
    return intent_out(_intent(name))


@router.patch("/intents/{name}", response={200: IntentOut, **PROBLEMS}, auth=auth.admin)
def update_intent(request: HttpRequest, name: str, body: IntentPatch):
    """Change the description or the handoff flag. Scope: admin."""
    intent = _intent(name)
    fields = body.model_dump(exclude_none=True)
    for field, value in fields.items():
        setattr(intent, field, value)
    if fields:
        intent.save(update_fields=[*fields, "updated_at"])
    return intent_out(intent)


@router.delete("/intents/{name}", response={204: None, **PROBLEMS}, auth=auth.admin)
def delete_intent(request: HttpRequest, name: str):
    """Delete an intent with its examples and responses. Scope: admin."""
    _intent(name).delete()
    return Status(204, None)


@router.get("/intents/{name}/examples", response={200: list[ExampleOut], **PROBLEMS}, auth=auth.read)
def list_examples(request: HttpRequest, name: str):
    """The intent's training examples. Scope: read."""
    intent = _intent(name)
    return [example_out(e) for e in intent.examples.select_related("intent").order_by("id")]


@router.post("/intents/{name}/examples", response={201: ExampleOut, **PROBLEMS}, auth=auth.admin)
def add_example(request: HttpRequest, name: str, body: ExampleIn):
    """A training example, checked as the admin import checks one, with personal data
    (emails, order ids, card and phone numbers) masked. Scope: admin. Honours Idempotency-Key."""
    intent = _intent(name)
    return idempotency.run(request, lambda: (201, example_out(actions.add_example(intent, body.text))))


@router.delete("/examples/{int:example_id}", response={204: None, **PROBLEMS}, auth=auth.admin)
def delete_example(request: HttpRequest, example_id: int):
    """Delete one training example. Scope: admin."""
    deleted, _ = TrainingExample.objects.filter(pk=example_id).delete()
    if not deleted:
        raise ApiProblem(404, "not_found", "No such example.")
    return Status(204, None)
