include!("../tools/build-commit.rs");
