"""Batch classification of image collections: `classify_collection` (the local job behind
`alexnet-export classify`) and `Classifier`, the picklable predictor it, Ray Data and Spark run.

Importing this package imports neither torch nor pyarrow (pyarrow only when Parquet is written
or read). docs/batch.md has the usage, the output layout and the resume rules.
"""

from alexnet_export.batch.classifier import Classifier
from alexnet_export.batch.local import ClassifyResult, classify_collection

__all__ = ["Classifier", "ClassifyResult", "classify_collection"]
