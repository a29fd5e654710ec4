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
    # `role` passed _ident(); DDL cannot take bind parameters.
    create_role = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" + role + "') THEN "
        "CREATE ROLE " + role + " NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; END IF; END $$"
    )
    op.execute(create_role)
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


_ORG = "nullif(current_setting('samplan.org_id', true), '')::uuid"
_SYSTEM = "coalesce(current_setting('samplan.scope', true), '') = 'system'"


def _plan_rule(org: str) -> str:
    """`EXISTS (...)`: the plan `p_plan` is visible to the organisation `org` (an SQL expression)."""
    return f"""EXISTS (
            SELECT 1 FROM plan p
            WHERE p.id = p_plan AND (
              p.initiating_organisation_id = {org}
              OR (
                EXISTS (
                  SELECT 1 FROM plan_participant pp
                  WHERE pp.plan_id = p.id AND pp.organisation_id = {org}
                    AND pp.kind IN ('huvudman', 'other'))
                AND EXISTS (
                  SELECT 1 FROM consent_scope cs JOIN consent c ON c.id = cs.consent_id
                  WHERE cs.plan_id = p.id AND cs.organisation_id = {org}
                    AND c.withdrawn_at IS NULL
                    AND (c.valid_until IS NULL OR c.valid_until >= (now() AT TIME ZONE 'UTC')::date))
              )
            )
          )"""


def _client_rule(org: str) -> str:
    """The client `p_client` is visible to `org`: linked, or one of their plans is."""
    return (
        f"EXISTS (SELECT 1 FROM client_link l WHERE l.client_id = p_client AND l.organisation_id = {org})\n"
        "            OR EXISTS (SELECT 1 FROM plan p WHERE p.client_id = p_client AND samplan_plan_visible(p.id))"
    )


def create_plan_access_functions() -> None:
    """The access rule of app/services/access.py, again in SQL, for RLS on plans and clients.

    SECURITY DEFINER so the lookups inside are not themselves filtered (which would recurse); the
    functions read only the caller's context settings and return a boolean.
    """
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION samplan_plan_visible(p_plan uuid) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
          SELECT {_SYSTEM} OR {_plan_rule(_ORG)}
        $$
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION samplan_client_visible(p_client uuid) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
          SELECT {_SYSTEM}
            OR {_client_rule(_ORG)}
        $$
        """
    )


def create_plan_access_functions_plpgsql() -> None:
    """The same rule as create_plan_access_functions, in PL/pgSQL (migration 0006).

    RLS calls these once per row. A SQL-language function that cannot be inlined (SECURITY DEFINER)
    has its body planned again in every statement that calls it; PL/pgSQL keeps its plans for the
    whole connection. Measured at national size: a plan read went from 230 to 380 requests per
    second on one worker (docs/performance.md)."""
    for signature, rule in (
        ("samplan_plan_visible(p_plan uuid)", _plan_rule("org")),
        ("samplan_client_visible(p_client uuid)", _client_rule("org")),
    ):
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION {signature} RETURNS boolean
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            DECLARE
              org uuid := {_ORG};
            BEGIN
              IF {_SYSTEM} THEN
                RETURN true;
              END IF;
              RETURN {rule};
            END
            $$
            """
        )


def enable_rls_using(table: str, predicate: str, *, insert_check: str | None = None) -> None:
    """RLS with one predicate for reads and changes; `insert_check` for new rows where it differs."""
    table = _ident(table)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    if insert_check is None:
        op.execute(f"CREATE POLICY {table}_access ON {table} USING ({predicate}) WITH CHECK ({predicate})")
        return
    for command in ("SELECT", "UPDATE", "DELETE"):
        op.execute(f"CREATE POLICY {table}_{command.lower()} ON {table} FOR {command} USING ({predicate})")
    op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({insert_check})")
