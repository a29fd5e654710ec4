"""SQL that migrations share: the service role's grants, tenant RLS policies, append-only tables.

PostgreSQL only, except `append_only`, which SQLite honours too.
"""

from __future__ import annotations

import re

from alembic import op

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def is_postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def app_role() -> str:
    return _ident(str(op.get_context().opts.get("app_role", "samplan_app")))


def create_app_role_and_grants() -> None:
    """The service connects as a role that owns nothing and cannot bypass RLS."""
    role = app_role()
    # One statement per execute: asyncpg prepares each and refuses several at once.
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$
        """
    )
    for statement in (
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}",
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {role}",
    ):
        op.execute(statement)
    op.execute(
        """
        CREATE OR REPLACE FUNCTION samplan_tenant_match(org uuid) RETURNS boolean
        LANGUAGE sql STABLE AS $$
          SELECT coalesce(current_setting('samplan.scope', true), '') = 'system'
              OR org = nullif(current_setting('samplan.org_id', true), '')::uuid
        $$;
        """
    )


def enable_tenant_rls(table: str, column: str = "organisation_id") -> None:
    """Rows are visible and writable only inside their organisation's context."""
    table, column = _ident(table), _ident(column)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {table}_tenant ON {table} "
        f"USING (samplan_tenant_match({column})) WITH CHECK (samplan_tenant_match({column}))"
    )


def append_only(table: str) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE) of every row, for every role."""
    table = _ident(table)
    if is_postgresql():
        op.execute(
            """
            CREATE OR REPLACE FUNCTION samplan_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END $$;
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION samplan_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION samplan_refuse_change()"
        )
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {app_role()}")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
