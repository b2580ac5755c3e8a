//! patina-imagetool: unpacks OCI images (layout dirs, oci-archive, docker
//! save) into OCI runtime bundles.

pub mod archive;
pub mod cache;
pub mod config;
pub mod copy;
pub mod devices;
pub mod digest;
pub mod extract;
pub mod idmap;
pub mod image;
pub mod inspect;
pub mod layer;
pub mod layout;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod registry;
pub mod safepath;
pub mod store;
pub mod unpack;
pub mod whiteout;
pub mod xattr;
