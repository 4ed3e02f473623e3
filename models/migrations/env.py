"""Alembic environment: runs on the connection the store hands over."""

from alembic import context
from sqlalchemy import create_engine

from stratmap.models.tables import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` on the command line: -x url=...
        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///stratmap.db")
        with create_engine(url).begin() as connection:
            context.configure(connection=connection, target_metadata=target_metadata,
                              render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
