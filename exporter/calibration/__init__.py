"""Calibration, shared by every backend that writes INT8: images.py (which images a file is calibrated and
verified on), ranges.py (images -> activation ranges, cached)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.calibration.images import CalibrationOptions, held_out_inputs, images_for
    from alexnet_export.exporter.calibration.ranges import CalibrationError, calibration_ranges, load_calibration_set

__all__ = ["CalibrationError", "CalibrationOptions", "calibration_ranges", "held_out_inputs", "images_for", "load_calibration_set"]
__getattr__ = lazy_names(__name__, {
    "CalibrationError": "ranges",
    "CalibrationOptions": "images",
    "calibration_ranges": "ranges",
    "held_out_inputs": "images",
    "images_for": "images",
    "load_calibration_set": "ranges",
})
