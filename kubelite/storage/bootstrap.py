"""The storage objects the server makes at start: the default ``local-path`` StorageClass."""
from __future__ import annotations

import logging

from kubelite.api import errors
from kubelite.api.resources import STORAGECLASSES
from kubelite.apiserver.registry import Registry
from kubelite.storage.localpath import CLASS_NAME, default_class

log = logging.getLogger(__name__)


async def ensure_default_class(reg: Registry) -> None:
    """Create the ``local-path`` class when it is missing (a changed one is kept as it is)."""
    try:
        await reg.get(STORAGECLASSES, "", CLASS_NAME)
        return
    except errors.NotFound:
        pass
    try:
        await reg.create(STORAGECLASSES, "", default_class())
    except errors.StatusError as e:  # e.g. created meanwhile
        log.warning("cannot create the %s StorageClass: %s", CLASS_NAME, e)
