"""Storage: a narrow, revisioned key-value log the API server keeps objects in."""

from kubesvc.storage.base import (
    Compacted,
    Event,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    Store,
    StoreError,
    Watch,
)

__all__ = ["Compacted", "Event", "KeyExists", "KeyNotFound", "RevisionConflict", "Store",
           "StoreError", "Watch"]
