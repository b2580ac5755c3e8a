//! Syscall names to numbers on each ABI (the generated tables), and the socket and
//! SysV IPC calls that some 32-bit ABIs reach through one multiplexer, socketcall(2)
//! or ipc(2), with the call's number in the first argument.

use super::syscalls::{self, ABIS, HASHES, NONE, ROWS};

/// A syscall's row in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row(usize);

impl Row {
    /// Its number on ABI `abi` (a column of [`ABIS`]; `NONE`: not there).
    pub fn number(self, abi: usize) -> u32 {
        COLUMNS[abi][self.0]
    }

    /// How it is reached through a multiplexer, if it is one of their calls.
    pub fn mux(self) -> Option<Mux> {
        match MUX[self.0] {
            0 => None,
            n if n < IPC => Some(Mux::Socketcall(u64::from(n))),
            n => Some(Mux::Ipc(u64::from(n - IPC))),
        }
    }
}

/// The row of `name`, if any ABI has it.
pub fn lookup(name: &str) -> Option<Row> {
    let h = syscalls::hash(name.as_bytes());
    let mut slot = slot_of(h);
    loop {
        let i = INDEX[slot] as usize;
        if i == EMPTY as usize {
            return None;
        }
        if HASHES[i] == h {
            return (NAMES[i] == name).then_some(Row(i));
        }
        slot = (slot + 1) % INDEX.len();
    }
}

/// An open-addressing hash index over the rows, built with patina: at most half full,
/// so a lookup mostly reads one slot, where a binary search over the hashes took ten
/// hard-to-predict branches (a profile resolves a few hundred names per `create`).
static INDEX: [u16; 2 * ROWS.len().next_power_of_two()] = {
    let mut index = [EMPTY; 2 * ROWS.len().next_power_of_two()];
    let mut i = 0;
    while i < ROWS.len() {
        let mut slot = slot_of(HASHES[i]);
        while index[slot] != EMPTY {
            slot = (slot + 1) % index.len();
        }
        index[slot] = i as u16;
        i += 1;
    }
    index
};

const EMPTY: u16 = u16::MAX;

const fn slot_of(h: u64) -> usize {
    (h ^ h >> 32) as usize % (2 * ROWS.len().next_power_of_two())
}

/// The numbers of `name` on every ABI, in the order of [`ABIS`] (`NONE` where it does
/// not exist).
#[cfg(test)]
pub fn numbers(name: &str) -> Option<&'static [u32; ABIS.len()]> {
    lookup(name).map(|r| &ROWS[r.0].1)
}

/// The tables as a lookup reads them, laid out when patina is built: the names on
/// their own and one array per ABI, so that a profile's few hundred lookups on its
/// two or three ABIs touch about 20 KB (a `create` runs them in a cold process), not
/// the rows of every ABI.
static NAMES: [&str; ROWS.len()] = {
    let mut out = [""; ROWS.len()];
    let mut i = 0;
    while i < ROWS.len() {
        out[i] = ROWS[i].0;
        i += 1;
    }
    out
};

static COLUMNS: [[u32; ROWS.len()]; ABIS.len()] = {
    let mut out = [[0; ROWS.len()]; ABIS.len()];
    let mut i = 0;
    while i < ROWS.len() {
        let mut abi = 0;
        while abi < ABIS.len() {
            out[abi][i] = ROWS[i].1[abi];
            abi += 1;
        }
        i += 1;
    }
    out
};

/// Syscall number of `name` on ABI `abi_name` (one of [`ABIS`]: "x86_64", "x86",
/// "x32", "aarch64", "arm", ...), if it exists there.
pub fn syscall_number(abi_name: &str, name: &str) -> Option<u32> {
    let abi = ABIS.iter().position(|a| *a == abi_name)?;
    lookup(name).map(|r| r.number(abi)).filter(|n| *n != NONE)
}

/// Which multiplexer carries a call, and the call's number there (SYS_SOCKET, SEMOP...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mux {
    Socketcall(u64),
    Ipc(u64),
}

/// linux/net.h SYS_* (1 to 20, in this order).
const SOCKET_CALLS: [&str; 20] = [
    "socket",
    "bind",
    "connect",
    "listen",
    "accept",
    "getsockname",
    "getpeername",
    "socketpair",
    "send",
    "recv",
    "sendto",
    "recvfrom",
    "shutdown",
    "setsockopt",
    "getsockopt",
    "sendmsg",
    "recvmsg",
    "accept4",
    "recvmmsg",
    "sendmmsg",
];

/// linux/ipc.h call numbers.
const IPC_CALLS: [(&str, u64); 12] = [
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

/// In [`MUX`]: ipc(2) calls are `IPC + call`, socketcall(2) calls just `call`.
const IPC: u8 = 100;

/// Per row of the tables: how that call is multiplexed (0: it is not), worked out when
/// patina is built, so that a profile's lookups cost nothing more for it.
static MUX: [u8; ROWS.len()] = {
    let mut out = [0u8; ROWS.len()];
    let mut i = 0;
    while i < ROWS.len() {
        let name = ROWS[i].0.as_bytes();
        let mut j = 0;
        while j < SOCKET_CALLS.len() {
            if eq(SOCKET_CALLS[j].as_bytes(), name) {
                out[i] = j as u8 + 1;
            }
            j += 1;
        }
        j = 0;
        while j < IPC_CALLS.len() {
            if eq(IPC_CALLS[j].0.as_bytes(), name) {
                out[i] = IPC + IPC_CALLS[j].1 as u8;
            }
            j += 1;
        }
        i += 1;
    }
    out
};

pub(super) const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    ROWS.len() < EMPTY as usize,
    "row numbers must fit the index"
);
