"""Session-scoped harness: Prefect API and S3 (moto server)."""
