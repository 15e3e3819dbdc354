"""initial ledger: deletion requests, their sample ids, processing batches

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_ids", sa.JSON(), nullable=False),
        sa.Column("parent_version", sa.String(32)),
        sa.Column("model_version", sa.String(32)),
        sa.Column("parent_data_version", sa.String(64)),
        sa.Column("data_version", sa.String(64)),
        sa.Column("gate", sa.String(16)),
        sa.Column("decisions", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "deletion_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("model_version", sa.String(32)),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id")),
        sa.Column("receipt", sa.JSON()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_deletion_requests_status", "deletion_requests", ["status"])
    op.create_index("ix_deletion_requests_batch_id", "deletion_requests", ["batch_id"])
    op.create_table(
        "request_sample_ids",
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("deletion_requests.id"),
                  primary_key=True),
        sa.Column("sample_id", sa.String(200), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("request_sample_ids")
    op.drop_index("ix_deletion_requests_batch_id", "deletion_requests")
    op.drop_index("ix_deletion_requests_status", "deletion_requests")
    op.drop_table("deletion_requests")
    op.drop_table("batches")
