"""Notification channels. One module per channel; each exposes a Notifier subclass.

The registry of channel types lives in :mod:`notifiers.registry` (explicit, no folder scanning).
"""

from notifiers.base import (
    Attachment,
    ChannelConfigError,
    Message,
    Notifier,
    NotifierError,
    Receipt,
    Recipient,
    Secret,
    mask_mobile,
    mask_mobiles_in,
)

__all__ = [
    "Attachment",
    "ChannelConfigError",
    "Message",
    "Notifier",
    "NotifierError",
    "Receipt",
    "Recipient",
    "Secret",
    "mask_mobile",
    "mask_mobiles_in",
]
