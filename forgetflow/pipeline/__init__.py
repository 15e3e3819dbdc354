"""The deletion batch: planning, gate, pipeline steps shared by the Prefect tasks."""
