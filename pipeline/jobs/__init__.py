"""Jobs: the daily run, archive backfills and the task functions the Airflow DAGs wire (no Airflow import)."""
