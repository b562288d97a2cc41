"""The endpoints, one module per resource."""

from chatbot.api.schemas import Problem

# Every operation documents the problems any call can get.
COMMON_PROBLEMS = {400: Problem, 401: Problem, 403: Problem, 422: Problem, 429: Problem}
