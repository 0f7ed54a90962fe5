"""Calibration, shared by every backend that writes INT8: images.py (which images a file is calibrated and
verified on, read once a process), ranges.py (images -> activation ranges, cached), checks.py (the folder,
checked before any work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.calibration.checks import CalibrationArgumentError, check_calibration_images
    from alexnet_export.exporter.calibration.images import CalibrationOptions, held_out_inputs, images_for
    from alexnet_export.exporter.calibration.ranges import CalibrationError, calibration_ranges, load_calibration_set

__all__ = ["CalibrationArgumentError", "CalibrationError", "CalibrationOptions", "calibration_ranges",
           "check_calibration_images", "held_out_inputs", "images_for", "load_calibration_set"]
__getattr__ = lazy_names(__name__, {
    "CalibrationArgumentError": "checks",
    "CalibrationError": "ranges",
    "CalibrationOptions": "images",
    "calibration_ranges": "ranges",
    "check_calibration_images": "checks",
    "held_out_inputs": "images",
    "images_for": "images",
    "load_calibration_set": "ranges",
})
