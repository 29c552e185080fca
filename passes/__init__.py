"""The passes; importing this package registers each one by name for pipeline strings."""

from cimc.passes import canonicalize, dce, fold_batch_norm, fold_constants, remove_identity

__all__ = ["canonicalize", "dce", "fold_batch_norm", "fold_constants", "remove_identity"]
