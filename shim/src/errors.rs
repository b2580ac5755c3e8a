//! The one table from patina's error kinds to the gRPC codes containerd maps onto its
//! errdefs (`errdefs.IsNotFound` and friends). Every error the task service answers
//! goes through [`code`]: the shim's own (no such task, exec id taken) and the
//! runtime's, whose kind patina writes into its JSON log line (`"kind"`, see
//! runtime.rs). A runtime that writes no kind (runc) gives Other, hence Unknown, as
//! containerd's own runc shim answers for a failed runc command.

use patina::{Error, Kind};

use crate::ttrpc::{Code, RpcError};

/// The gRPC code of each kind.
pub fn code(kind: Kind) -> Code {
    match kind {
        Kind::NotFound => Code::NotFound,
        Kind::AlreadyExists => Code::AlreadyExists,
        Kind::InvalidConfig => Code::InvalidArgument,
        Kind::Unsupported => Code::Unimplemented,
        Kind::WrongState => Code::FailedPrecondition,
        Kind::Os => Code::Internal,
        Kind::Other => Code::Unknown,
    }
}

impl From<Error> for RpcError {
    fn from(e: Error) -> RpcError {
        RpcError::new(code(e.kind()), e.to_string())
    }
}

/// An answer of `kind` from the shim itself.
pub fn rpc(kind: Kind, message: impl Into<String>) -> RpcError {
    Error::new(kind, message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_code() {
        let table = [
            (Kind::NotFound, Code::NotFound, 5),
            (Kind::AlreadyExists, Code::AlreadyExists, 6),
            (Kind::InvalidConfig, Code::InvalidArgument, 3),
            (Kind::Unsupported, Code::Unimplemented, 12),
            (Kind::WrongState, Code::FailedPrecondition, 9),
            (Kind::Os, Code::Internal, 13),
            (Kind::Other, Code::Unknown, 2),
        ];
        assert_eq!(table.len(), Kind::ALL.len());
        for (kind, want, number) in table {
            assert_eq!(code(kind), want, "{kind}");
            assert_eq!(code(kind) as i32, number, "{kind}: gRPC's number");
        }
    }

    #[test]
    fn errors_keep_their_message() {
        let e = RpcError::from(Error::new(
            Kind::WrongState,
            "container \"c\" is not running",
        ));
        assert_eq!(e.code, Code::FailedPrecondition);
        assert_eq!(e.message, "container \"c\" is not running");
        let e = RpcError::from(Error::os(nix::errno::Errno::EPERM, "mount rootfs"));
        assert_eq!(e.code, Code::Internal);
        assert_eq!(e.message, "mount rootfs: EPERM (Operation not permitted)");
    }
}
