"""Light-field I/O: the formats a scene comes in (HCI folders, row/column-named images, EPFL
``.mat``, zarr), their transforms at ingest (views, crop, resize) and the zarr every stage reads."""

from lfcomp.io.lightfield import LightField, detect_format, ingest, ingest_to_zarr, read_lightfield, write_lightfield

__all__ = ["LightField", "detect_format", "ingest", "ingest_to_zarr", "read_lightfield", "write_lightfield"]
