//! Building the target beside the old one and swapping at the end.
//!
//! A run builds everything in a schema of its own (`build_name`), so a run
//! that fails at any point leaves the old target as it was; only when all
//! tables, constraints and sequences are done does one transaction rename
//! the old schema away, rename the new one into place and drop the old one.
//!
//! `DROP SCHEMA ... CASCADE` would also drop whatever *other* schemas built
//! on the old one (a view elsewhere, a foreign key from another schema's
//! table, an extension installed in it). So before dropping we look for
//! objects outside the schema that depend on objects inside it, and refuse,
//! naming them, if there are any: the cascade can then only reach the
//! schema's own objects. (Internal dependents, such as a table's TOAST table
//! in `pg_toast`, are parts of the object itself and do not count.) A session advisory lock (released with the
//! connection, on every path) keeps two runs from building the same target.

use super::sql::{Conn, StatementError, ident};

/// The schema a run builds in: fixed per target, so a leftover from a
/// crashed run is found and replaced by the next (under the advisory lock).
pub fn build_name(target: &str) -> String {
    short_name("xmat_new", target)
}

/// The name the old target has between the renames (inside the swap transaction).
pub fn old_name(target: &str) -> String {
    short_name("xmat_old", target)
}

/// `prefix_HASH_target`, cut to PostgreSQL's 63-byte limit on a character boundary.
fn short_name(prefix: &str, target: &str) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut h: u32 = 0x811c9dc5;
    for b in target.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let mut s = format!("{prefix}_{h:08x}_{target}");
    let mut end = s.len().min(63);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Why the target could not be prepared or replaced.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error("another host xmat run is writing schema {0} (advisory lock held); try again later")]
    Busy(String),
    #[error(
        "schema {schema} cannot be replaced: objects in other schemas depend on it, and dropping it would drop them too:\n  {}\n  drop or move them first",
        objects.join("\n  ")
    )]
    Dependents {
        schema: String,
        objects: Vec<String>,
    },
}

/// Objects outside `schema` that depend on something inside it, as
/// "what (depends on what)".
pub async fn dependents(conn: &Conn, schema: &str) -> Result<Vec<String>, StatementError> {
    let sql = "WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = $1), inside(classid, objid) AS ( \
           SELECT 'pg_namespace'::regclass, s.oid FROM s \
           UNION ALL SELECT 'pg_class'::regclass, c.oid FROM pg_class c, s WHERE c.relnamespace = s.oid \
           UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t, s WHERE t.typnamespace = s.oid \
           UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p, s WHERE p.pronamespace = s.oid \
           UNION ALL SELECT 'pg_constraint'::regclass, c.oid FROM pg_constraint c, s WHERE c.connamespace = s.oid \
           UNION ALL SELECT 'pg_collation'::regclass, c.oid FROM pg_collation c, s WHERE c.collnamespace = s.oid \
           UNION ALL SELECT 'pg_operator'::regclass, o.oid FROM pg_operator o, s WHERE o.oprnamespace = s.oid \
           UNION ALL SELECT 'pg_opclass'::regclass, o.oid FROM pg_opclass o, s WHERE o.opcnamespace = s.oid \
           UNION ALL SELECT 'pg_opfamily'::regclass, o.oid FROM pg_opfamily o, s WHERE o.opfnamespace = s.oid \
           UNION ALL SELECT 'pg_conversion'::regclass, c.oid FROM pg_conversion c, s WHERE c.connamespace = s.oid \
           UNION ALL SELECT 'pg_statistic_ext'::regclass, x.oid FROM pg_statistic_ext x, s WHERE x.stxnamespace = s.oid \
           UNION ALL SELECT 'pg_ts_config'::regclass, x.oid FROM pg_ts_config x, s WHERE x.cfgnamespace = s.oid \
           UNION ALL SELECT 'pg_ts_dict'::regclass, x.oid FROM pg_ts_dict x, s WHERE x.dictnamespace = s.oid \
           UNION ALL SELECT 'pg_default_acl'::regclass, a.oid FROM pg_default_acl a, s WHERE a.defaclnamespace = s.oid \
           UNION ALL SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class, s \
             WHERE c.relnamespace = s.oid \
           UNION ALL SELECT 'pg_attrdef'::regclass, a.oid FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid, s \
             WHERE c.relnamespace = s.oid \
           UNION ALL SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid, s \
             WHERE c.relnamespace = s.oid \
           UNION ALL SELECT 'pg_policy'::regclass, p.oid FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid, s \
             WHERE c.relnamespace = s.oid) \
         SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid) || ' (depends on ' \
           || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ')' \
         FROM pg_depend d JOIN inside i ON i.classid = d.refclassid AND i.objid = d.refobjid \
         WHERE d.deptype <> 'i' \
           AND NOT EXISTS (SELECT 1 FROM inside o WHERE o.classid = d.classid AND o.objid = d.objid) \
         ORDER BY 1 LIMIT 20";
    let rows = conn.query(sql, &[&schema]).await?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

async fn schema_exists(conn: &Conn, schema: &str) -> Result<bool, StatementError> {
    let row = conn
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await?;
    Ok(row.get(0))
}

/// Drops a schema after making sure the cascade stays inside it.
async fn drop_schema(conn: &Conn, schema: &str) -> Result<(), SwapError> {
    let deps = dependents(conn, schema).await?;
    if !deps.is_empty() {
        return Err(SwapError::Dependents {
            schema: schema.to_string(),
            objects: deps,
        });
    }
    conn.exec(&format!("DROP SCHEMA {} CASCADE", ident(schema)))
        .await?;
    Ok(())
}

/// Takes the target's advisory lock and clears a leftover build schema.
pub async fn prepare(conn: &Conn, target: &str, build: &str) -> Result<(), SwapError> {
    // Our own messages say what happens; the server's notices ("drop cascades
    // to ...") would only repeat it.
    conn.exec("SET client_min_messages = warning").await?;
    let locked: bool = conn
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('host xmat'), hashtext($1))",
            &[&target],
        )
        .await?
        .get(0);
    if !locked {
        return Err(SwapError::Busy(target.to_string()));
    }
    if schema_exists(conn, build).await? {
        tracing::info!("dropping {build}, left over from an earlier run that did not finish");
        drop_schema(conn, build).await?;
    }
    Ok(())
}

/// Removes the build schema after a failed run (the old target is untouched).
pub async fn discard(conn: &Conn, build: &str) -> Result<(), SwapError> {
    if schema_exists(conn, build).await? {
        drop_schema(conn, build).await?;
    }
    Ok(())
}

/// In one transaction: the old target out of the way, the new one in its
/// place, the old one dropped. Nothing changes if any step fails.
pub async fn swap(conn: &Conn, target: &str, build: &str) -> Result<(), SwapError> {
    conn.exec("BEGIN").await?;
    let result = async {
        if schema_exists(conn, target).await? {
            // Hold off new dependents while we look for existing ones.
            let tables: Vec<String> = conn
                .query(
                    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                    &[&target],
                )
                .await?
                .into_iter()
                .map(|r| r.get(0))
                .collect();
            if !tables.is_empty() {
                conn.exec(&format!(
                    "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                    tables.join(", ")
                ))
                .await?;
            }
            let old = old_name(target);
            conn.exec(&format!(
                "ALTER SCHEMA {} RENAME TO {}",
                ident(target),
                ident(&old)
            ))
            .await?;
            conn.exec(&format!(
                "ALTER SCHEMA {} RENAME TO {}",
                ident(build),
                ident(target)
            ))
            .await?;
            drop_schema(conn, &old).await?;
        } else {
            conn.exec(&format!(
                "ALTER SCHEMA {} RENAME TO {}",
                ident(build),
                ident(target)
            ))
            .await?;
        }
        Ok::<(), SwapError>(())
    }
    .await;
    match result {
        Ok(()) => {
            conn.exec("COMMIT").await?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.exec("ROLLBACK").await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_names_fit_and_differ() {
        assert!(build_name("tenant_1").starts_with("xmat_new_"));
        assert!(build_name("tenant_1").ends_with("_tenant_1"));
        assert_ne!(build_name("a"), build_name("b"));
        let long = "é".repeat(60);
        assert!(build_name(&long).len() <= 63);
        assert_ne!(build_name(&long), old_name(&long));
    }
}
