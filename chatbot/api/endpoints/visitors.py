"""Visitors (contacts): get one, update its name, email and custom attributes."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from ninja import Router

from chatbot.api import auth
from chatbot.api.endpoints import COMMON_PROBLEMS
from chatbot.api.models import VisitorAttributes
from chatbot.api.problems import ApiProblem
from chatbot.api.schemas import MAX_ATTRIBUTES, Problem, VisitorOut, VisitorPatch
from chatbot.conversations.models import Visitor

router = Router(tags=["visitors"])
PROBLEMS = {**COMMON_PROBLEMS, 404: Problem}


def visitor_out(visitor: Visitor) -> dict:
    stored = VisitorAttributes.objects.filter(visitor=visitor).values_list("attributes", flat=True).first()
    return {
        **VisitorOut.model_validate({**visitor.__dict__, "attributes": {}}).model_dump(mode="json"),
        "attributes": stored or {},
    }


def _visitor(visitor_id: int) -> Visitor:
    visitor = Visitor.objects.filter(pk=visitor_id).first()
    if visitor is None:
        raise ApiProblem(404, "not_found", "No such visitor.")
    return visitor


@router.get("/visitors/{int:visitor_id}", response={200: VisitorOut, **PROBLEMS}, auth=auth.read)
def get_visitor(request: HttpRequest, visitor_id: int):
    """A visitor with the custom attributes integrations keep on it. Scope: read."""
    return visitor_out(_visitor(visitor_id))


@router.patch("/visitors/{int:visitor_id}", response={200: VisitorOut, **PROBLEMS}, auth=auth.write)
def update_visitor(request: HttpRequest, visitor_id: int, body: VisitorPatch):
    """Change the name or email; `attributes` is merged in (null removes one). Scope: write."""
    fields = {}
    if body.name is not None:
        fields["name"] = body.name.strip()
    if body.email is not None:
        if body.email:
            try:
                validate_email(body.email)
            except ValidationError:
                raise ApiProblem(422, "invalid_email", "That email address does not look right.") from None
        fields["email"] = body.email
    with transaction.atomic():
        visitor = Visitor.objects.select_for_update().filter(pk=visitor_id).first()
        if visitor is None:
            raise ApiProblem(404, "not_found", "No such visitor.")
        if fields:
            Visitor.objects.filter(pk=visitor_id).update(**fields)
        if body.attributes is not None:
            row, _ = VisitorAttributes.objects.get_or_create(visitor=visitor)
            merged = {**row.attributes, **body.attributes}
            row.attributes = {k: v for k, v in merged.items() if v is not None}
            if len(row.attributes) > MAX_ATTRIBUTES:
                raise ApiProblem(422, "too_many_attributes", f"A visitor keeps at most {MAX_ATTRIBUTES} attributes.")
            row.save(update_fields=["attributes", "updated_at"])
    return visitor_out(_visitor(visitor_id))
