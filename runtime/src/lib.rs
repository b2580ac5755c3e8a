//! patina: an OCI runtime.
