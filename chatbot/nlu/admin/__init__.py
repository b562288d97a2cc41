"""The reviewer's and the operator's side of the bot: training data, the
review inbox of misunderstood messages, and model versions."""

from chatbot.nlu.admin.review import FeedbackAdmin
from chatbot.nlu.admin.training_data import IntentAdmin, TrainingExampleAdmin
from chatbot.nlu.admin.versions import ModelVersionAdmin

__all__ = ["FeedbackAdmin", "IntentAdmin", "ModelVersionAdmin", "TrainingExampleAdmin"]
