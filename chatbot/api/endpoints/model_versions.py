"""Intent model versions: list, request training, activate (with the regression guard), roll back."""

from django.http import HttpRequest
from ninja import Router

from chatbot.api import actions, auth, idempotency
from chatbot.api.endpoints import COMMON_PROBLEMS
from chatbot.api.problems import ApiProblem
from chatbot.api.schemas import ActivateIn, ModelVersionOut, Problem, TrainingIn
from chatbot.nlu.models import ModelVersion

router = Router(tags=["model versions"])
PROBLEMS = {**COMMON_PROBLEMS, 404: Problem, 409: Problem}


def version_out(version: ModelVersion) -> dict:
    return ModelVersionOut.model_validate(version, from_attributes=True).model_dump(mode="json")


@router.get("/model-versions", response={200: list[ModelVersionOut], **COMMON_PROBLEMS}, auth=auth.read)
def list_versions(request: HttpRequest):
    """The newest 100 versions, newest first. Scope: read."""
    return [version_out(v) for v in ModelVersion.objects.order_by("-id")[:100]]


@router.get("/model-versions/{int:version_id}", response={200: ModelVersionOut, **PROBLEMS}, auth=auth.read)
def get_version(request: HttpRequest, version_id: int):
    """One version with its metrics. Scope: read."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise ApiProblem(404, "not_found", "No such model version.")
    return version_out(version)


@router.post("/model-versions", response={202: ModelVersionOut, **PROBLEMS}, auth=auth.admin)
def request_training(request: HttpRequest, body: TrainingIn):
    """Queue a training run on the current data (one at a time). Scope: admin. Honours Idempotency-Key."""
    return idempotency.run(
        request, lambda: (202, version_out(actions.request_training(body.mode, request.api_token.user)))
    )


@router.post("/model-versions/{int:version_id}/activate", response={200: ModelVersionOut, **PROBLEMS}, auth=auth.admin)
def activate(request: HttpRequest, version_id: int, body: ActivateIn):
    """Make a ready version the one that answers; refused (409) when it is worse than
    the active one, unless `force`. Scope: admin."""
    return idempotency.run(
        request, lambda: (200, version_out(actions.activate(version_id, request.api_token.user, force=body.force)))
    )


@router.post("/model-versions/{int:version_id}/rollback", response={200: ModelVersionOut, **PROBLEMS}, auth=auth.admin)
def roll_back(request: HttpRequest, version_id: int):
    """Go back to a version that served before. Scope: admin."""
    return idempotency.run(request, lambda: (200, version_out(actions.roll_back(version_id, request.api_token.user))))
