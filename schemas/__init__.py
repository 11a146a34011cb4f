"""The declared schemas (story record, topic taxonomy), installed as the package data of pipeline.schemas."""
