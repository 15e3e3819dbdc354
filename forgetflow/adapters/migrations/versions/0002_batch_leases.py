"""batch leases (resumable batches), one live batch per model, indexes for claiming

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIVE = sa.text("status = 'processing'")


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(200)))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    # a batch an older forgetflow left `processing` holds no lease: the next run resumes it
    op.execute("UPDATE batches SET lease_expires_at = created_at WHERE status = 'processing'")
    op.create_index("uq_batches_one_processing_per_model", "batches", ["model_name"],
                    unique=True, sqlite_where=LIVE, postgresql_where=LIVE)
    op.create_index("ix_batches_model_status_lease", "batches",
                    ["model_name", "status", "lease_expires_at"])
    op.create_index("ix_requests_model_status_id", "deletion_requests",
                    ["model_name", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_requests_model_status_id", "deletion_requests")
    op.drop_index("ix_batches_model_status_lease", "batches")
    op.drop_index("uq_batches_one_processing_per_model", "batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
