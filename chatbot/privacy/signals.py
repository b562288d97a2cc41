"""Card numbers never reach the messages table (MASK_CARDS_AT_REST): every message,
whoever writes it, is masked just before it is saved."""

from django.conf import settings
from django.db.models.signals import pre_save
from django.dispatch import receiver

from chatbot.conversations.models import Message
from chatbot.nlu.pii import mask_cards


@receiver(pre_save, sender=Message)
def mask_card_numbers(sender, instance: Message, **kwargs) -> None:
    if settings.MASK_CARDS_AT_REST and instance.text:
        instance.text = mask_cards(instance.text)
