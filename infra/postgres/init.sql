-- One PostgreSQL server, three databases: Prefect's, MLflow's backend store, the ledger.
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
CREATE DATABASE forgetflow;
