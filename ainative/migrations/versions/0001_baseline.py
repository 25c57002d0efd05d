"""Baseline: the request log and the feedback store as ainative 0.1 created them before the schema had versions.

A frozen copy of the tables (a later change of `ainative.store.REQUESTS` must not change what this revision did). A
database from before versions has no version table and may hold these tables already, perhaps from a release before
the `role`, `abstained`, `unknown_rate` and `embedding` columns: then this revision adds the missing columns (nullable,
as the store used to on opening) and the missing indexes, and creates nothing twice, so stamping it is safe."""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def requests_columns() -> list[sa.Column]:
    "The columns of `requests` at this revision, in their order."
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("label", sa.String(256)),
        sa.Column("abstained", sa.Boolean, nullable=True),
        sa.Column("confidence", sa.Float),
        sa.Column("top_k", sa.Text),
        sa.Column("latency_s", sa.Float),
        sa.Column("text_length", sa.Integer),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("text_hash", sa.String(64), nullable=True),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("unknown_rate", sa.Float, nullable=True),
        sa.Column("embedding", sa.LargeBinary, nullable=True)]


def feedback_columns() -> list[sa.Column]:
    "The columns of `feedback` at this revision, in their order."
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("source", sa.String(64)),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("text_hash", sa.String(64), nullable=True)]


INDEXES = {  # table -> (name, columns, unique)
    "requests": [("ix_requests_request", ["request_id", "position"], False), ("ix_requests_at", ["at"], False)],
    "feedback": [("ix_feedback_request", ["request_id", "position"], True), ("ix_feedback_at", ["at"], False)]}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = set(inspector.get_table_names())
    for table, columns in (("requests", requests_columns()), ("feedback", feedback_columns())):
        if table not in present:
            op.create_table(table, *columns)
            existing_indexes = set()
        else:  # a log from before versions: add what an older release lacked, as that release's successor did
            have = {column["name"] for column in inspector.get_columns(table)}
            for column in columns:
                if column.name not in have: op.add_column(table, sa.Column(column.name, column.type, nullable=True))
            existing_indexes = {index["name"] for index in inspector.get_indexes(table)}
        for name, indexed, unique in INDEXES[table]:
            if name not in existing_indexes: op.create_index(name, table, indexed, unique=unique)


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("requests")
