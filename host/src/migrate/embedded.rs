//! The built-in migration files, compiled into the binary. Add new files here
//! too; a test checks this list against the `migrations/` folder.

/// (file name, content) of every file in `migrations/`.
pub(super) const FILES: &[(&str, &str)] = &[
    (
        "host--0.1.0.sql",
        include_str!("../../../migrations/host--0.1.0.sql"),
    ),
    (
        "host--0.1.0--0.2.0.sql",
        include_str!("../../../migrations/host--0.1.0--0.2.0.sql"),
    ),
    (
        "host--0.2.0.sql",
        include_str!("../../../migrations/host--0.2.0.sql"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_in_migrations_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = super::FILES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
