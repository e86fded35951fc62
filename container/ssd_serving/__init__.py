"""ssd_serving: serve a GluonCV SSD detector behind the SageMaker inference contract."""
__version__ = "0.1.0"
