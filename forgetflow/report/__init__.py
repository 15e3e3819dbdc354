"""What people look at: batch figures (MLflow, Prefect), the HTML audit report, bench plots."""
