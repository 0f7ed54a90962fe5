"""Batch classification of image collections: `classify_collection` (the local job behind
`alexnet-export classify`), `classify_on_ray` (the same job on Ray Data, `classify --ray`) and
`Classifier`, the picklable predictor they, and Spark, run (`ArrowClassifier` returns Arrow tables).

Importing this package imports neither torch, pyarrow nor ray (pyarrow only when Parquet is written
or read). docs/batch.md has the usage, the output layout and the resume rules.
"""

from alexnet_export.batch.classifier import ArrowClassifier, Classifier
from alexnet_export.batch.local import ClassifyResult, classify_collection
from alexnet_export.batch.ray_job import classify_on_ray

__all__ = ["ArrowClassifier", "Classifier", "ClassifyResult", "classify_collection", "classify_on_ray"]
