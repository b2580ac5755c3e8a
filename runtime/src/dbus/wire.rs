//! D-Bus wire format: the values patina sends and reads, and the message header.
//!
//! Only what systemd's Manager API and the bus daemon's own methods need: the basic
//! types y b n q i u x t s o g, arrays, structs, dict entries and variants. Unix
//! descriptors (`h`) and doubles are never sent nor expected; a message carrying one
//! is refused with its signature named rather than misread.

use std::fmt;

/// One D-Bus value. Arrays carry their element signature so an empty one still
/// marshals with the right type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Dict(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Dict(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }
}

/// The signature of several values in a row (a message body).
pub fn signature_of(values: &[Value]) -> String {
    values.iter().map(Value::signature).collect()
}

/// What went wrong reading a message: the wire is not what the spec allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed D-Bus message: {}", self.0)
    }
}

fn bad<T>(why: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(why.into()))
}

/// Alignment of the first byte of a value of the type starting `sig`.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' => 4,
        _ => 8, // x t ( {
    }
}

/// Appends values at offsets counted from the message start (the body starts on an
/// 8-byte boundary, so counting from it is the same).
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::U16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::I32(n) => self.fixed(4, &n.to_le_bytes()),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::U64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                // The length excludes the padding before the first element, which is
                // there even when the array is empty.
                self.pad(alignment(elem.as_bytes()[0]));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Dict(k, v) => {
                self.pad(8);
                self.value(k);
                self.value(v);
            }
            Value::Variant(inner) => {
                self.value(&Value::Sig(inner.signature()));
                self.value(inner);
            }
        }
    }

    fn fixed(&mut self, align: usize, bytes: &[u8]) {
        self.pad(align);
        self.buf.extend_from_slice(bytes);
    }
}

/// Reads values from `buf` (a whole message, so offsets are the spec's).
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
    depth: usize,
}

/// The spec's limit on nested containers (32 arrays + 32 structs); also keeps a
/// hostile peer from recursing us off the stack.
const MAX_DEPTH: usize = 64;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize, big_endian: bool) -> Reader<'a> {
        Reader {
            buf,
            pos,
            big_endian,
            depth: 0,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn align(&mut self, a: usize) -> Result<(), WireError> {
        let next = self.pos.next_multiple_of(a);
        if next > self.buf.len() {
            return bad("truncated (padding)");
        }
        self.pos = next;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() - self.pos < n {
            return bad(format!("truncated at byte {}", self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.align(N)?;
        let mut b: [u8; N] = self.take(N)?.try_into().expect("N bytes");
        if self.big_endian {
            b.reverse();
        }
        Ok(b)
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn text(&mut self, len: usize) -> Result<String, WireError> {
        let bytes = self.take(len + 1)?;
        if bytes[len] != 0 {
            return bad("string without its terminating NUL");
        }
        String::from_utf8(bytes[..len].to_vec()).or_else(|_| bad("string is not UTF-8"))
    }

    /// Every complete type of `sig`, one after the other.
    pub fn values(&mut self, sig: &str) -> Result<Vec<Value>, WireError> {
        let mut out = Vec::new();
        let mut rest = sig;
        while !rest.is_empty() {
            let (one, tail) = split_type(rest)?;
            out.push(self.value(one)?);
            rest = tail;
        }
        Ok(out)
    }

    /// One value of the single complete type `sig`.
    pub fn value(&mut self, sig: &str) -> Result<Value, WireError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return bad("nested too deep");
        }
        let v = self.value_inner(sig);
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self, sig: &str) -> Result<Value, WireError> {
        Ok(match sig.as_bytes()[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                n => return bad(format!("boolean {n}")),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if sig.starts_with('s') {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Sig(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                let (one, tail) = split_type(&inner)?;
                if !tail.is_empty() {
                    return bad(format!(
                        "variant signature {inner:?} holds more than one type"
                    ));
                }
                Value::variant(self.value(one)?)
            }
            b'a' => {
                let elem = &sig[1..];
                let len = self.u32()? as usize;
                self.align(alignment(elem.as_bytes()[0]))?;
                let end = self.pos + len;
                if end > self.buf.len() {
                    return bad("array runs past the message");
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                if self.pos != end {
                    return bad("array elements overrun its length");
                }
                Value::Array(elem.to_owned(), items)
            }
            b'(' => {
                self.align(8)?;
                Value::Struct(self.values(&sig[1..sig.len() - 1])?)
            }
            b'{' => {
                self.align(8)?;
                let mut kv = self.values(&sig[1..sig.len() - 1])?;
                if kv.len() != 2 {
                    return bad("dict entry without exactly a key and a value");
                }
                let v = kv.pop().expect("two");
                let k = kv.pop().expect("two");
                Value::Dict(Box::new(k), Box::new(v))
            }
            c => return bad(format!("type {:?} is not supported", c as char)),
        })
    }
}

/// Split the first complete type off a signature.
pub fn split_type(sig: &str) -> Result<(&str, &str), WireError> {
    let b = sig.as_bytes();
    let mut i = 0;
    // Array prefixes, then one basic type or a bracketed group.
    while i < b.len() && b[i] == b'a' {
        i += 1;
    }
    if i >= b.len() {
        return bad(format!("signature {sig:?} ends inside an array type"));
    }
    let end = match b[i] {
        b'(' | b'{' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j) {
                    Some(b'(') | Some(b'{') => depth += 1,
                    Some(b')') | Some(b'}') => {
                        // An empty struct has no wire form: an array of them would be
                        // read forever without consuming a byte.
                        if matches!(b[j - 1], b'(' | b'{') {
                            return bad(format!("signature {sig:?} has an empty group"));
                        }
                        depth -= 1;
                        if depth == 0 {
                            break j + 1;
                        }
                    }
                    Some(_) => {}
                    None => return bad(format!("signature {sig:?} has an unclosed group")),
                }
                j += 1;
            }
        }
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b's' | b'o' | b'g' | b'v' => i + 1,
        c => {
            return bad(format!(
                "signature {sig:?}: type {:?} is not supported",
                c as char
            ))
        }
    };
    Ok((&sig[..end], &sig[end..]))
}

/// Message types of the header's second byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MethodCall = 1,
    Return = 2,
    Error = 3,
    Signal = 4,
}

/// A whole message: the header fields patina uses, and the body as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

/// Header flag: the caller does not want a reply.
pub const NO_REPLY_EXPECTED: u8 = 1;

impl Message {
    pub fn method_call(dest: &str, path: &str, interface: &str, member: &str) -> Message {
        Message {
            kind: Kind::MethodCall,
            flags: 0,
            serial: 0,
            path: Some(path.into()),
            interface: Some(interface.into()),
            member: Some(member.into()),
            error_name: None,
            reply_serial: None,
            destination: Some(dest.into()),
            sender: None,
            body: Vec::new(),
        }
    }

    pub fn with_body(mut self, body: Vec<Value>) -> Message {
        self.body = body;
        self
    }

    /// The first body value as a string (error messages, names, object paths).
    pub fn first_str(&self) -> Option<&str> {
        self.body.first().and_then(Value::as_str)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::default();
        for v in &self.body {
            body.value(v);
        }
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| {
            fields.push(Value::Struct(vec![Value::Byte(code), Value::variant(v)]));
        };
        let s = |s: &Option<String>| s.clone();
        if let Some(p) = s(&self.path) {
            field(1, Value::Path(p));
        }
        if let Some(i) = s(&self.interface) {
            field(2, Value::Str(i));
        }
        if let Some(m) = s(&self.member) {
            field(3, Value::Str(m));
        }
        if let Some(e) = s(&self.error_name) {
            field(4, Value::Str(e));
        }
        if let Some(r) = self.reply_serial {
            field(5, Value::U32(r));
        }
        if let Some(d) = s(&self.destination) {
            field(6, Value::Str(d));
        }
        if let Some(d) = s(&self.sender) {
            field(7, Value::Str(d));
        }
        if !self.body.is_empty() {
            field(8, Value::Sig(signature_of(&self.body)));
        }
        let mut w = Writer::default();
        w.buf
            .extend_from_slice(&[b'l', self.kind as u8, self.flags, 1]);
        w.buf
            .extend_from_slice(&(body.buf.len() as u32).to_le_bytes());
        w.buf.extend_from_slice(&self.serial.to_le_bytes());
        w.value(&Value::Array("(yv)".into(), fields));
        w.pad(8);
        w.buf.extend_from_slice(&body.buf);
        w.buf
    }

    /// How many bytes the message starting with these 16 bytes takes in all.
    pub fn total_len(head: &[u8; 16]) -> Result<usize, WireError> {
        let big = match head[0] {
            b'l' => false,
            b'B' => true,
            e => return bad(format!("endianness byte {e:#x}")),
        };
        let word = |at: usize| {
            let b: [u8; 4] = head[at..at + 4].try_into().expect("4 bytes");
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (body, fields) = (word(4) as usize, word(12) as usize);
        // The spec's maximum message size (128 MiB) bounds what a peer can make us hold.
        if body > 1 << 27 || fields > 1 << 26 {
            return bad("message larger than the spec's 128 MiB");
        }
        Ok((16 + fields).next_multiple_of(8) + body)
    }

    pub fn decode(buf: &[u8]) -> Result<Message, WireError> {
        if buf.len() < 16 {
            return bad("shorter than a header");
        }
        let head: &[u8; 16] = buf[..16].try_into().expect("16 bytes");
        if Message::total_len(head)? != buf.len() {
            return bad("length disagrees with the header");
        }
        let big = buf[0] == b'B';
        let kind = match buf[1] {
            1 => Kind::MethodCall,
            2 => Kind::Return,
            3 => Kind::Error,
            4 => Kind::Signal,
            k => return bad(format!("message type {k}")),
        };
        let mut r = Reader::new(buf, 8, big);
        let serial = r.u32()?;
        let Value::Array(_, fields) = r.value("a(yv)")? else {
            unreachable!("an array signature reads an array")
        };
        let mut m = Message {
            kind,
            flags: buf[2],
            serial,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            body: Vec::new(),
        };
        let mut signature = String::new();
        for f in fields {
            let Value::Struct(pair) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (pair.first(), pair.get(1))
            else {
                continue;
            };
            let text = v.as_str().map(str::to_owned);
            match code {
                1 => m.path = text,
                2 => m.interface = text,
                3 => m.member = text,
                4 => m.error_name = text,
                5 => m.reply_serial = v.as_u32(),
                6 => m.destination = text,
                7 => m.sender = text,
                8 => signature = text.unwrap_or_default(),
                9 => {
                    return bad("the message carries unix descriptors, which patina never asks for")
                }
                _ => {}
            }
        }
        r.align(8)?;
        m.body = r.values(&signature)?;
        if r.pos() != buf.len() {
            return bad(format!("body longer than its signature {signature:?}"));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(values: Vec<Value>) {
        let m = Message::method_call("d", "/p", "i.f", "M").with_body(values.clone());
        let bytes = m.encode();
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(back.body, values);
        assert_eq!(back.member.as_deref(), Some("M"));
        assert_eq!(back.path.as_deref(), Some("/p"));
    }

    #[test]
    fn every_type_survives_a_roundtrip() {
        roundtrip(vec![
            Value::Byte(7),
            Value::U64(u64::MAX),
            Value::Bool(true),
            Value::I16(-2),
            Value::U16(9),
            Value::I32(-5),
            Value::I64(-1 << 40),
            Value::str("héllo"),
            Value::Path("/org/x".into()),
            Value::Sig("a(sv)".into()),
            Value::Array("y".into(), vec![]),
            Value::Array("t".into(), vec![]),
            Value::Array(
                "(sv)".into(),
                vec![
                    Value::Struct(vec![Value::str("A"), Value::variant(Value::U64(3))]),
                    Value::Struct(vec![
                        Value::str("PIDs"),
                        Value::variant(Value::Array("u".into(), vec![Value::U32(1)])),
                    ]),
                ],
            ),
            Value::Array(
                "{sv}".into(),
                vec![Value::Dict(
                    Box::new(Value::str("k")),
                    Box::new(Value::variant(Value::Bool(false))),
                )],
            ),
        ]);
    }

    /// The bytes of a Hello call as the spec lays them out (serial 1): the header
    /// fields array, each field struct on 8 bytes, the final padding, and no body.
    #[test]
    fn hello_matches_the_specified_layout() {
        let mut m = Message::method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
        );
        m.serial = 1;
        let bytes = m.encode();
        let mut expected: Vec<u8> = vec![b'l', 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0x6e, 0, 0, 0];
        let field = |e: &mut Vec<u8>, code: u8, sig: u8, s: &str| {
            while !e.len().is_multiple_of(8) {
                e.push(0);
            }
            e.extend_from_slice(&[code, 1, sig, 0]);
            e.extend_from_slice(&(s.len() as u32).to_le_bytes());
            e.extend_from_slice(s.as_bytes());
            e.push(0);
        };
        field(&mut expected, 1, b'o', "/org/freedesktop/DBus");
        field(&mut expected, 2, b's', "org.freedesktop.DBus");
        field(&mut expected, 3, b's', "Hello");
        field(&mut expected, 6, b's', "org.freedesktop.DBus");
        let fields_len = expected.len() - 16;
        expected[12..16].copy_from_slice(&(fields_len as u32).to_le_bytes());
        while !expected.len().is_multiple_of(8) {
            expected.push(0);
        }
        assert_eq!(bytes, expected);
    }

    #[test]
    fn empty_array_keeps_the_element_padding() {
        let mut w = Writer::default();
        w.value(&Value::Array("t".into(), vec![]));
        // length 0, then padding to 8 for the (absent) first u64.
        assert_eq!(w.buf, vec![0, 0, 0, 0, 0, 0, 0, 0]);
        let mut w = Writer::default();
        w.value(&Value::Byte(1));
        w.value(&Value::Array(
            "(st)".into(),
            vec![Value::Struct(vec![Value::str("a"), Value::U64(1)])],
        ));
        // y, pad to 4, len=16 (struct at 8: s "a" = 4+2 bytes, pad to 16, t to 24).
        assert_eq!(&w.buf[4..8], &16u32.to_le_bytes());
        assert_eq!(w.buf.len(), 24);
    }

    /// Every single-byte corruption and every truncation of a real message decodes to
    /// a value or an error: no panic, no endless loop (a peer on the bus can send us a
    /// signal with any signature, e.g. an array of empty structs).
    #[test]
    fn corrupted_messages_never_panic_or_hang() {
        let good = Message::method_call("org.x", "/o", "i.f", "M")
            .with_body(vec![
                Value::Array(
                    "(sv)".into(),
                    vec![Value::Struct(vec![
                        Value::str("PIDs"),
                        Value::variant(Value::Array("u".into(), vec![Value::U32(1)])),
                    ])],
                ),
                Value::Array(
                    "{st}".into(),
                    vec![Value::Dict(
                        Box::new(Value::str("k")),
                        Box::new(Value::U64(1)),
                    )],
                ),
                Value::Sig("a(sv)".into()),
            ])
            .encode();
        for len in 0..good.len() {
            let _ = Message::decode(&good[..len]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x28, 0x29, 0x61, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = Message::decode(&bad);
            }
        }
        // The hostile case itself: body signature "a()" with an 8-byte array.
        let mut r = Reader::new(&[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, false);
        assert!(r.values("a()").is_err());
    }

    #[test]
    fn big_endian_messages_are_read() {
        // A signal "S" with body (u 5) sent by a big-endian peer.
        let mut b: Vec<u8> = vec![b'B', 4, 0, 1, 0, 0, 0, 4, 0, 0, 0, 9, 0, 0, 0, 0];
        let mut fields = Vec::new();
        fields.extend_from_slice(&[3, 1, b's', 0, 0, 0, 0, 1, b'S', 0]);
        fields.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // pad to 8 (16 + 16)
        fields.extend_from_slice(&[8, 1, b'g', 0, 1, b'u', 0]);
        let flen = fields.len() as u32;
        b[12..16].copy_from_slice(&flen.to_be_bytes());
        b.extend_from_slice(&fields);
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        b.extend_from_slice(&5u32.to_be_bytes());
        let m = Message::decode(&b).unwrap();
        assert_eq!(m.kind, Kind::Signal);
        assert_eq!(m.serial, 9);
        assert_eq!(m.member.as_deref(), Some("S"));
        assert_eq!(m.body, vec![Value::U32(5)]);
    }

    #[test]
    fn malformed_input_is_refused_not_misread() {
        let good = Message::method_call("d", "/p", "i.f", "M")
            .with_body(vec![Value::str("x")])
            .encode();
        for cut in [0, 5, 16, good.len() - 1] {
            assert!(Message::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut no_nul = good.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'!';
        assert!(Message::decode(&no_nul).unwrap_err().0.contains("NUL"));
        assert!(split_type("a").is_err());
        assert!(split_type("(su").is_err());
        assert!(split_type("h").is_err());
        assert!(split_type("a()").is_err() && split_type("a{}").is_err());
        assert_eq!(split_type("a{sv}u").unwrap(), ("a{sv}", "u"));
        assert_eq!(split_type("(ssa(sv))x").unwrap(), ("(ssa(sv))", "x"));
        let mut deep = Reader::new(&[0u8; 1024], 0, false);
        let sig = "(".repeat(100) + "y" + &")".repeat(100);
        assert!(deep.value(&sig).is_err());
    }
}
