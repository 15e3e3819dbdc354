"""Alembic environment: always run online on the connection `ledger.migrate` hands over."""

from alembic import context

from forgetflow.adapters.ledger_schema import metadata


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
