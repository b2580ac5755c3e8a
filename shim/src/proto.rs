//! A small protobuf (proto3) codec and the containerd messages the shim speaks.
//!
//! Only the wire format is implemented (varint, length-delimited; fixed fields are
//! skipped on decode), which is all the task API, events, options and metrics need.
//! Messages are declared with [`message!`]: field numbers as in containerd's .proto
//! files, unknown fields are skipped, proto3 defaults are not encoded.

use std::collections::BTreeMap;
use std::io;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("protobuf: {what}"))
}

pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> io::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| invalid("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("varint too long"))
    }

    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let len = usize::try_from(self.varint()?).map_err(|_| invalid("length"))?;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| invalid("truncated field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn advance(&mut self, n: usize) -> io::Result<()> {
        if self.pos + n > self.buf.len() {
            return Err(invalid("truncated fixed field"));
        }
        self.pos += n;
        Ok(())
    }

    pub fn skip(&mut self, wire: u8) -> io::Result<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.advance(8),
            LEN => self.bytes().map(drop),
            FIXED32 => self.advance(4),
            w => Err(invalid(&format!("unsupported wire type {w}"))),
        }
    }
}

pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_key(buf: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(buf, (u64::from(tag) << 3) | u64::from(wire));
}

fn put_len(buf: &mut Vec<u8>, tag: u32, data: &[u8]) {
    put_key(buf, tag, LEN);
    put_varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

pub trait Message: Default {
    fn encode_to(&self, buf: &mut Vec<u8>);
    fn merge_field(&mut self, tag: u32, wire: u8, d: &mut Decoder) -> io::Result<()>;

    fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode_to(&mut buf);
        buf
    }

    fn decode(bytes: &[u8]) -> io::Result<Self> {
        let mut msg = Self::default();
        let mut d = Decoder::new(bytes);
        while !d.done() {
            let key = d.varint()?;
            let tag = u32::try_from(key >> 3).map_err(|_| invalid("field number"))?;
            msg.merge_field(tag, (key & 7) as u8, &mut d)?;
        }
        Ok(msg)
    }
}

/// A field of a message: how it is written and read.
pub trait Field {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>);
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()>;
}

macro_rules! varint_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
                if *self != 0 {
                    put_key(buf, tag, VARINT);
                    // Negative int32/int64 are sign-extended to 64 bits, as protobuf does.
                    put_varint(buf, *self as i64 as u64);
                }
            }
            fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
                if wire != VARINT {
                    return d.skip(wire);
                }
                *self = d.varint()? as $t;
                Ok(())
            }
        }
    )*};
}
varint_field!(u32, u64, i32, i64);

impl Field for bool {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
        if *self {
            put_key(buf, tag, VARINT);
            buf.push(1);
        }
    }
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
        if wire != VARINT {
            return d.skip(wire);
        }
        *self = d.varint()? != 0;
        Ok(())
    }
}

impl Field for String {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
        if !self.is_empty() {
            put_len(buf, tag, self.as_bytes());
        }
    }
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
        if wire != LEN {
            return d.skip(wire);
        }
        *self =
            String::from_utf8(d.bytes()?.to_vec()).map_err(|_| invalid("string is not UTF-8"))?;
        Ok(())
    }
}

impl Field for Vec<u8> {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
        if !self.is_empty() {
            put_len(buf, tag, self);
        }
    }
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
        if wire != LEN {
            return d.skip(wire);
        }
        *self = d.bytes()?.to_vec();
        Ok(())
    }
}

impl Field for Vec<String> {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
        for s in self {
            put_len(buf, tag, s.as_bytes());
        }
    }
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
        let mut s = String::new();
        s.merge(wire, d)?;
        self.push(s);
        Ok(())
    }
}

impl<M: Message> Field for Option<M> {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
        if let Some(m) = self {
            put_len(buf, tag, &m.encode());
        }
    }
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
        if wire != LEN {
            return d.skip(wire);
        }
        *self = Some(M::decode(d.bytes()?)?);
        Ok(())
    }
}

impl<M: Message> Field for Vec<M> {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
        for m in self {
            put_len(buf, tag, &m.encode());
        }
    }
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
        if wire != LEN {
            return d.skip(wire);
        }
        self.push(M::decode(d.bytes()?)?);
        Ok(())
    }
}

/// `map<string, string>`: repeated entries {1: key, 2: value}.
impl Field for BTreeMap<String, String> {
    fn encode_field(&self, tag: u32, buf: &mut Vec<u8>) {
        for (k, v) in self {
            let entry = MapEntry {
                key: k.clone(),
                value: v.clone(),
            };
            put_len(buf, tag, &entry.encode());
        }
    }
    fn merge(&mut self, wire: u8, d: &mut Decoder) -> io::Result<()> {
        if wire != LEN {
            return d.skip(wire);
        }
        let e = MapEntry::decode(d.bytes()?)?;
        self.insert(e.key, e.value);
        Ok(())
    }
}

/// Declares a message struct and its codec: `message!(Name { 1 field: Type, ... });`
#[macro_export]
macro_rules! message {
    ($(#[$m:meta])* $name:ident { $($tag:literal $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct $name { $(pub $field: $ty),* }

        impl $crate::proto::Message for $name {
            fn encode_to(&self, _buf: &mut Vec<u8>) {
                $( $crate::proto::Field::encode_field(&self.$field, $tag, _buf); )*
            }
            fn merge_field(
                &mut self,
                tag: u32,
                wire: u8,
                d: &mut $crate::proto::Decoder,
            ) -> std::io::Result<()> {
                match tag {
                    $( $tag => $crate::proto::Field::merge(&mut self.$field, wire, d), )*
                    _ => d.skip(wire),
                }
            }
        }
    };
}

message!(MapEntry { 1 key: String, 2 value: String });

// google.protobuf
message!(Empty {});
message!(Timestamp { 1 seconds: i64, 2 nanos: i32 });
message!(Any { 1 type_url: String, 2 value: Vec<u8> });

impl Timestamp {
    pub fn from(t: std::time::SystemTime) -> Timestamp {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
    pub fn now() -> Timestamp {
        Timestamp::from(std::time::SystemTime::now())
    }
}

impl Any {
    pub fn pack<M: Message>(type_url: &str, m: &M) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: m.encode(),
        }
    }
}

// containerd.types.Mount
message!(Mount { 1 kind: String, 2 source: String, 3 target: String, 4 options: Vec<String> });

/// containerd.v1.types.Status
pub mod status {
    pub const UNKNOWN: i32 = 0;
    pub const CREATED: i32 = 1;
    pub const RUNNING: i32 = 2;
    pub const STOPPED: i32 = 3;
    pub const PAUSED: i32 = 4;
}

message!(ProcessInfo { 1 pid: u32, 2 info: Option<Any> });
// containerd.runc.v1.ProcessDetails (the `info` of an exec'd process in Pids)
message!(ProcessDetails { 1 exec_id: String });

// containerd.task.v2 / v3: the same messages, field for field.
message!(CreateTaskRequest {
    1 id: String, 2 bundle: String, 3 rootfs: Vec<Mount>, 4 terminal: bool,
    5 stdin: String, 6 stdout: String, 7 stderr: String, 8 checkpoint: String,
    9 parent_checkpoint: String, 10 options: Option<Any>,
});
message!(CreateTaskResponse { 1 pid: u32 });
message!(DeleteRequest { 1 id: String, 2 exec_id: String });
message!(DeleteResponse { 1 pid: u32, 2 exit_status: u32, 3 exited_at: Option<Timestamp> });
message!(ExecProcessRequest {
    1 id: String, 2 exec_id: String, 3 terminal: bool, 4 stdin: String,
    5 stdout: String, 6 stderr: String, 7 spec: Option<Any>,
});
message!(ResizePtyRequest { 1 id: String, 2 exec_id: String, 3 width: u32, 4 height: u32 });
message!(StateRequest { 1 id: String, 2 exec_id: String });
message!(StateResponse {
    1 id: String, 2 bundle: String, 3 pid: u32, 4 status: i32, 5 stdin: String,
    6 stdout: String, 7 stderr: String, 8 terminal: bool, 9 exit_status: u32,
    10 exited_at: Option<Timestamp>, 11 exec_id: String,
});
message!(KillRequest { 1 id: String, 2 exec_id: String, 3 signal: u32, 4 all: bool });
message!(CloseIORequest { 1 id: String, 2 exec_id: String, 3 stdin: bool });
message!(PidsRequest { 1 id: String });
message!(PidsResponse { 1 processes: Vec<ProcessInfo> });
message!(CheckpointTaskRequest { 1 id: String, 2 path: String, 3 options: Option<Any> });
// containerd.runc.v1.CheckpointOptions: what ctr and CRI send with Checkpoint.
message!(CheckpointOptions {
    1 exit: bool, 2 open_tcp: bool, 3 external_unix_sockets: bool, 4 terminal: bool,
    5 file_locks: bool, 6 empty_namespaces: Vec<String>, 7 cgroups_mode: String,
    8 image_path: String, 9 work_path: String,
});
message!(UpdateTaskRequest {
    1 id: String, 2 resources: Option<Any>, 3 annotations: BTreeMap<String, String>,
});
message!(StartRequest { 1 id: String, 2 exec_id: String });
message!(StartResponse { 1 pid: u32 });
message!(WaitRequest { 1 id: String, 2 exec_id: String });
message!(WaitResponse { 1 exit_status: u32, 2 exited_at: Option<Timestamp> });
message!(StatsRequest { 1 id: String });
message!(StatsResponse { 1 stats: Option<Any> });
message!(ConnectRequest { 1 id: String });
message!(ConnectResponse { 1 shim_pid: u32, 2 task_pid: u32, 3 version: String });
message!(ShutdownRequest { 1 id: String, 2 now: bool });
message!(PauseRequest { 1 id: String });
message!(ResumeRequest { 1 id: String });

// containerd.events (api/events/task.proto)
message!(TaskIO { 1 stdin: String, 2 stdout: String, 3 stderr: String, 4 terminal: bool });
message!(TaskCreate {
    1 container_id: String, 2 bundle: String, 3 rootfs: Vec<Mount>, 4 io: Option<TaskIO>,
    5 checkpoint: String, 6 pid: u32,
});
message!(TaskStart { 1 container_id: String, 2 pid: u32 });
message!(TaskDelete {
    1 container_id: String, 2 pid: u32, 3 exit_status: u32, 4 exited_at: Option<Timestamp>,
    5 id: String,
});
message!(TaskExit {
    1 container_id: String, 2 id: String, 3 pid: u32, 4 exit_status: u32,
    5 exited_at: Option<Timestamp>,
});
message!(TaskOOM { 1 container_id: String });
message!(TaskExecAdded { 1 container_id: String, 2 exec_id: String });
message!(TaskExecStarted { 1 container_id: String, 2 exec_id: String, 3 pid: u32 });
message!(TaskPaused { 1 container_id: String });
message!(TaskResumed { 1 container_id: String });

// containerd.types.Envelope, containerd.services.events.ttrpc.v1.ForwardRequest
message!(Envelope {
    1 timestamp: Option<Timestamp>, 2 namespace: String, 3 topic: String, 4 event: Option<Any>,
});
message!(ForwardRequest { 1 envelope: Option<Envelope> });

// Runtime options: containerd.runc.v1.Options and runtimeoptions.v1.Options
message!(RuncOptions {
    1 no_pivot_root: bool, 2 no_new_keyring: bool, 3 shim_cgroup: String, 4 io_uid: u32,
    5 io_gid: u32, 6 binary_name: String, 7 root: String, 9 systemd_cgroup: bool,
    10 criu_image_path: String, 11 criu_work_path: String, 12 task_api_address: String,
    13 task_api_version: u32,
});
message!(RuntimeOptions { 1 type_url: String, 2 config_path: String, 3 config_body: Vec<u8> });

// containerd.types.RuntimeInfo (`-info`)
message!(RuntimeVersion { 1 version: String, 2 revision: String });
message!(RuntimeInfo {
    1 name: String, 2 version: Option<RuntimeVersion>, 3 options: Option<Any>,
    4 features: Option<Any>, 5 annotations: BTreeMap<String, String>,
});

// containerd.runtime.bootstrap.v1
message!(BootstrapParams {
    1 instance_id: String, 2 namespace: String, 3 log_level: i32, 4 containerd_version: String,
    5 containerd_ttrpc_address: String, 6 containerd_grpc_address: String,
    7 containerd_binary: String, 8 extensions: Vec<Extension>, 9 socket_dir: String,
});
message!(Extension { 1 value: Option<Any> });
message!(BootstrapResult {
    1 version: i32, 2 address: String, 3 protocol: String,
    5 metadata: BTreeMap<String, String>,
});

// io.containerd.cgroups.v1.Metrics (the fields the shim fills)
message!(V1Metrics {
    2 pids: Option<V1PidsStat>, 3 cpu: Option<V1CpuStat>, 4 memory: Option<V1MemoryStat>,
    9 memory_oom_control: Option<V1MemoryOomControl>,
});
message!(V1PidsStat { 1 current: u64, 2 limit: u64 });
message!(V1CpuStat { 1 usage: Option<V1CpuUsage>, 2 throttling: Option<V1Throttle> });
message!(V1CpuUsage { 1 total: u64, 2 kernel: u64, 3 user: u64 });
message!(V1Throttle { 1 periods: u64, 2 throttled_periods: u64, 3 throttled_time: u64 });
message!(V1MemoryStat {
    1 cache: u64, 2 rss: u64, 3 rss_huge: u64, 4 mapped_file: u64, 5 dirty: u64,
    6 writeback: u64, 7 pg_pg_in: u64, 8 pg_pg_out: u64, 9 pg_fault: u64, 10 pg_maj_fault: u64,
    11 inactive_anon: u64, 12 active_anon: u64, 13 inactive_file: u64, 14 active_file: u64,
    15 unevictable: u64, 16 hierarchical_memory_limit: u64, 17 hierarchical_swap_limit: u64,
    18 total_cache: u64, 19 total_rss: u64, 20 total_rss_huge: u64, 21 total_mapped_file: u64,
    22 total_dirty: u64, 23 total_writeback: u64, 24 total_pg_pg_in: u64,
    25 total_pg_pg_out: u64, 26 total_pg_fault: u64, 27 total_pg_maj_fault: u64,
    28 total_inactive_anon: u64, 29 total_active_anon: u64, 30 total_inactive_file: u64,
    31 total_active_file: u64, 32 total_unevictable: u64, 33 usage: Option<V1MemoryEntry>,
    34 swap: Option<V1MemoryEntry>, 35 kernel: Option<V1MemoryEntry>,
    36 kernel_tcp: Option<V1MemoryEntry>,
});
message!(V1MemoryEntry { 1 limit: u64, 2 usage: u64, 3 max: u64, 4 failcnt: u64 });
message!(V1MemoryOomControl { 1 oom_kill_disable: u64, 2 under_oom: u64, 3 oom_kill: u64 });

// io.containerd.cgroups.v2.Metrics (the fields the shim fills)
message!(V2Metrics {
    1 pids: Option<V1PidsStat>, 2 cpu: Option<V2CpuStat>, 4 memory: Option<V2MemoryStat>,
    8 memory_events: Option<V2MemoryEvents>,
});
message!(V2CpuStat {
    1 usage_usec: u64, 2 user_usec: u64, 3 system_usec: u64, 4 nr_periods: u64,
    5 nr_throttled: u64, 6 throttled_usec: u64,
});
message!(V2MemoryStat {
    1 anon: u64, 2 file: u64, 3 kernel_stack: u64, 4 slab: u64, 5 sock: u64, 6 shmem: u64,
    7 file_mapped: u64, 8 file_dirty: u64, 9 file_writeback: u64, 11 inactive_anon: u64,
    12 active_anon: u64, 13 inactive_file: u64, 14 active_file: u64, 15 unevictable: u64,
    18 pgfault: u64, 19 pgmajfault: u64, 32 usage: u64, 33 usage_limit: u64, 34 swap_usage: u64,
    35 swap_limit: u64,
});
message!(V2MemoryEvents { 1 low: u64, 2 high: u64, 3 max: u64, 4 oom: u64, 5 oom_kill: u64 });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let req = CreateTaskRequest {
            id: "c1".into(),
            bundle: "/b".into(),
            rootfs: vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec!["lowerdir=/a".into(), "upperdir=/b".into()],
            }],
            terminal: true,
            options: Some(Any {
                type_url: "x".into(),
                value: vec![1, 2, 3],
            }),
            ..Default::default()
        };
        assert_eq!(CreateTaskRequest::decode(&req.encode()).unwrap(), req);
        let ts = Timestamp {
            seconds: -5,
            nanos: 7,
        };
        assert_eq!(Timestamp::decode(&ts.encode()).unwrap(), ts);
        let mut m = BTreeMap::new();
        m.insert("k".to_string(), "v".to_string());
        let u = UpdateTaskRequest {
            id: "x".into(),
            annotations: m,
            ..Default::default()
        };
        assert_eq!(UpdateTaskRequest::decode(&u.encode()).unwrap(), u);
    }

    #[test]
    fn known_bytes() {
        // protoc --encode of `pid: 150` for CreateTaskResponse
        assert_eq!(
            CreateTaskResponse { pid: 150 }.encode(),
            vec![0x08, 0x96, 0x01]
        );
        // unknown fields (fixed64 tag 15, string tag 16) are skipped
        let mut b = vec![0x79, 1, 2, 3, 4, 5, 6, 7, 8, 0x82, 0x01, 1, b'x'];
        b.extend([0x08, 0x05]);
        assert_eq!(CreateTaskResponse::decode(&b).unwrap().pid, 5);
    }
}
