"""The passes; importing this package registers each one by name for pipeline strings."""

from cimc.passes import (
    bit_slice,
    canonicalize,
    dce,
    fold_batch_norm,
    fold_constants,
    lower_solve,
    lower_to_cim,
    place,
    remove_identity,
    replicate,
    split_groups,
    tile,
)

__all__ = [
    "bit_slice",
    "canonicalize",
    "dce",
    "fold_batch_norm",
    "fold_constants",
    "lower_solve",
    "lower_to_cim",
    "place",
    "remove_identity",
    "replicate",
    "split_groups",
    "tile",
]
