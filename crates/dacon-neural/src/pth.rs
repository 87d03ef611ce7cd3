//! A reader for `torch.save` ZIP checkpoints (state dicts) that treats the
//! pickle as data: a small pickle machine that knows only the opcodes and
//! the few callables a state dict uses, and executes nothing.
//!
//! Why our own: burn's reader (zip 9) refuses some valid checkpoints ("Invalid
//! Central Directory header" on files Python opens); a state dict needs only
//! stored ZIP entries and a dozen pickle opcodes.
//!
//! The file is untrusted, so everything it can make the reader do is bounded
//! by its size: offsets and sizes use checked arithmetic, a tensor view must
//! lie inside its storage, nesting is at most [`MAX_DEPTH`] deep, memo
//! copies cost at most [`WORK_PER_BYTE`] values per pickle byte, and the
//! values produced at most [`VALUES_PER_BYTE`] per file byte.

use std::collections::BTreeMap;

use crate::weights::RawTensor;

/// Deepest nesting of containers a checkpoint may use; state dicts use 3 or
/// 4 levels. Bounding it keeps recursive clone and drop off the stack limit.
pub const MAX_DEPTH: usize = 100;

/// Values the pickle machine may copy out of its memo per byte of pickle
/// (plus a fixed allowance): a real pickle fetches small objects, but a
/// hostile one doubles a list per few bytes.
pub const WORK_PER_BYTE: usize = 64;

/// f32 values the tensors may hold per byte of file: a plain checkpoint
/// yields at most one per two bytes (half precision); views sharing a
/// storage may read it a few times over, a broadcast view (stride 0) of a
/// tiny file asking for terabytes may not.
pub const VALUES_PER_BYTE: usize = 8;

/// Why a `torch.save` file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PthError {
    /// A ZIP structure ends early or points outside the file.
    #[error("truncated or inconsistent ZIP archive ({0})")]
    Zip(&'static str),
    /// A stored entry is compressed.
    #[error("ZIP entry {0} is compressed; torch.save stores entries")]
    Compressed(String),
    /// No `data.pkl` in the archive.
    #[error("no data.pkl in the archive (not a torch.save file)")]
    NoPickle,
    /// Written on a big-endian machine.
    #[error("big-endian checkpoints are not supported")]
    BigEndian,
    /// The pickle stream is malformed.
    #[error("malformed pickle at byte {at}: {what}")]
    Pickle {
        /// Offset in the pickle stream.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// An opcode a state dict does not use.
    #[error("unsupported pickle opcode 0x{op:02x} at byte {at}")]
    Opcode {
        /// Offset in the pickle stream.
        at: usize,
        /// The opcode.
        op: u8,
    },
    /// Containers nested deeper than 100 levels (the reader's `MAX_DEPTH`).
    #[error("the pickle nests containers deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Memo copies exceed the work bound.
    #[error(
        "the pickle copies more than {limit} values out of its memo (bounded by the file size)"
    )]
    TooMuchWork {
        /// The bound for this file.
        limit: usize,
    },
    /// The top object is not a dictionary.
    #[error("the checkpoint is not a dictionary of tensors")]
    NotADict,
    /// A tensor's arguments are not what `_rebuild_tensor` takes.
    #[error("a tensor's {0} is malformed")]
    BadTensor(&'static str),
    /// A tensor's storage is not in the archive.
    #[error("storage {storage} of tensor {name} is missing")]
    MissingStorage {
        /// Tensor name.
        name: String,
        /// Storage key.
        storage: String,
    },
    /// Shape and stride differ in rank.
    #[error("tensor {0}: stride and shape differ in rank")]
    Rank(String),
    /// The view reaches outside its storage.
    #[error("tensor {0}: its offset, shape and strides reach outside its storage")]
    OutsideStorage(String),
    /// More values than the file size allows.
    #[error("tensor {0}: more values than a file of this size can hold")]
    TooLarge(String),
}

type Result<T> = std::result::Result<T, PthError>;

/// `n` bytes at `p`, or `None` when they are not all inside `b`.
fn slice(b: &[u8], p: usize, n: usize) -> Option<&[u8]> {
    b.get(p..p.checked_add(n)?)
}

/// Little-endian integers of a ZIP archive, read with bounds checks.
struct Le<'a>(&'a [u8]);

impl Le<'_> {
    fn bytes<const N: usize>(&self, p: usize) -> Result<[u8; N]> {
        slice(self.0, p, N)
            .and_then(|s| s.try_into().ok())
            .ok_or(PthError::Zip("a field lies past the end"))
    }
    fn u16(&self, p: usize) -> Result<usize> {
        Ok(usize::from(u16::from_le_bytes(self.bytes(p)?)))
    }
    fn u32(&self, p: usize) -> Result<usize> {
        usize::try_from(u32::from_le_bytes(self.bytes(p)?))
            .map_err(|_| PthError::Zip("an offset does not fit"))
    }
    fn u64(&self, p: usize) -> Result<usize> {
        usize::try_from(u64::from_le_bytes(self.bytes(p)?))
            .map_err(|_| PthError::Zip("an offset does not fit"))
    }
}

/// `a + b + ...` or an error naming the ZIP structure.
fn add(parts: &[usize], what: &'static str) -> Result<usize> {
    parts
        .iter()
        .try_fold(0usize, |s, &x| s.checked_add(x))
        .ok_or(PthError::Zip(what))
}

/// One stored ZIP entry: where its bytes are.
struct Entry {
    offset: usize,
    len: usize,
}

impl Entry {
    fn bytes<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        // Checked against the file when the entry was read.
        &b[self.offset..self.offset + self.len]
    }
}

/// Reads the entries of a ZIP archive held in memory (stored only, as
/// `torch.save` writes them).
fn zip_entries(b: &[u8]) -> Result<BTreeMap<String, Entry>> {
    let le = Le(b);
    let lowest = b.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..=b.len().saturating_sub(22))
        .rev()
        .find(|&p| slice(b, p, 4) == Some(b"PK\x05\x06"))
        .ok_or(PthError::Zip("no end-of-directory record"))?;
    let mut count = le.u16(eocd + 10)?;
    let mut cd_offset = le.u32(eocd + 16)?;
    if count == 0xffff || cd_offset == 0xffff_ffff {
        // ZIP64: the locator sits right before the end record.
        let loc = eocd
            .checked_sub(20)
            .ok_or(PthError::Zip("no ZIP64 locator"))?;
        if slice(b, loc, 4) != Some(b"PK\x06\x07") {
            return Err(PthError::Zip("no ZIP64 locator"));
        }
        let rec = le.u64(loc + 8)?;
        if slice(b, rec, 4) != Some(b"PK\x06\x06") {
            return Err(PthError::Zip("bad ZIP64 end record"));
        }
        count = le.u64(add(&[rec, 32], "ZIP64 record")?)?;
        cd_offset = le.u64(add(&[rec, 48], "ZIP64 record")?)?;
    }
    let mut entries = BTreeMap::new();
    let mut p = cd_offset;
    for _ in 0..count {
        if slice(b, p, 4) != Some(b"PK\x01\x02") {
            return Err(PthError::Zip("bad central directory entry"));
        }
        let at = |k: usize| add(&[p, k], "central directory entry");
        let method = le.u16(at(10)?)?;
        let mut size = le.u32(at(20)?)?;
        let name_len = le.u16(at(28)?)?;
        let extra_len = le.u16(at(30)?)?;
        let comment_len = le.u16(at(32)?)?;
        let mut local = le.u32(at(42)?)?;
        let name = slice(b, at(46)?, name_len).ok_or(PthError::Zip("entry name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        // ZIP64 extra field: the 64-bit values of the fields set to ~0.
        let mut e = at(46 + name_len)?;
        let extra_end = add(&[e, extra_len], "extra field")?;
        while e + 4 <= extra_end {
            let (id, len) = (le.u16(e)?, le.u16(e + 2)?);
            if id == 1 {
                let mut q = e + 4;
                if le.u32(at(24)?)? == 0xffff_ffff {
                    q += 8; // uncompressed size
                }
                if size == 0xffff_ffff {
                    size = le.u64(q)?;
                    q += 8;
                }
                if local == 0xffff_ffff {
                    local = le.u64(q)?;
                }
            }
            e += 4 + len;
        }
        if method != 0 {
            return Err(PthError::Compressed(name));
        }
        if slice(b, local, 4) != Some(b"PK\x03\x04") {
            return Err(PthError::Zip("bad local header"));
        }
        let name_and_extra = le.u16(add(&[local, 26], "local header")?)?
            + le.u16(add(&[local, 28], "local header")?)?;
        let data = add(&[local, 30, name_and_extra], "local header")?;
        if slice(b, data, size).is_none() {
            return Err(PthError::Zip("an entry runs past the end of the file"));
        }
        entries.insert(
            name,
            Entry {
                offset: data,
                len: size,
            },
        );
        p = add(&[extra_end, comment_len], "central directory")?;
    }
    Ok(entries)
}

/// Values of the pickle machine.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    /// A persistent storage reference: element type and archive key.
    Storage(String, String),
    Tensor {
        storage: String,
        dtype: String,
        offset: usize,
        shape: Vec<usize>,
        stride: Vec<usize>,
    },
    /// Anything else a checkpoint may hold (kept, never run).
    Opaque,
}

/// A value on the stack or in the memo, with what it costs to copy (its
/// number of values) and how deeply it nests: known without walking it.
#[derive(Debug, Clone)]
struct Item {
    value: Value,
    size: usize,
    depth: usize,
}

impl Item {
    fn leaf(value: Value) -> Item {
        Item {
            value,
            size: 1,
            depth: 0,
        }
    }

    /// A container of `items`, built by `make`.
    fn container(items: Vec<Item>, make: impl FnOnce(Vec<Value>) -> Value) -> Result<Item> {
        let size = items.iter().fold(1usize, |s, i| s.saturating_add(i.size));
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(PthError::TooDeep);
        }
        Ok(Item {
            value: make(items.into_iter().map(|i| i.value).collect()),
            size,
            depth,
        })
    }

    /// Adds `items` to this list or dict (appends and set-items); other
    /// objects ignore them, as their state is not needed.
    fn extend(&mut self, items: Vec<Item>, dict: bool) -> Result<()> {
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        let size = items.iter().fold(0usize, |s, i| s.saturating_add(i.size));
        if depth > MAX_DEPTH {
            return Err(PthError::TooDeep);
        }
        let values = items.into_iter().map(|i| i.value);
        match (&mut self.value, dict) {
            (Value::List(l), false) => l.extend(values),
            (Value::Dict(d), true) => d.extend(pairs(values.collect())?),
            _ => return Ok(()),
        }
        self.depth = self.depth.max(depth);
        self.size = self.size.saturating_add(size);
        Ok(())
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
    if items.len() % 2 != 0 {
        return Err(PthError::BadTensor("dictionary (odd number of items)"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// The pickle machine: stack, marks, memo and the work done so far.
struct Machine<'a> {
    p: &'a [u8],
    i: usize,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: BTreeMap<u32, Item>,
    work: usize,
    work_limit: usize,
}

impl<'a> Machine<'a> {
    fn new(p: &'a [u8]) -> Self {
        Machine {
            p,
            i: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: BTreeMap::new(),
            work: 0,
            work_limit: p
                .len()
                .saturating_mul(WORK_PER_BYTE)
                .saturating_add(1 << 16),
        }
    }

    fn fail(&self, what: &'static str) -> PthError {
        PthError::Pickle { at: self.i, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = slice(self.p, self.i, n).ok_or_else(|| self.fail("truncated"))?;
        self.i += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        s.try_into().map_err(|_| self.fail("truncated"))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn len32(&mut self) -> Result<usize> {
        usize::try_from(self.u32()?).map_err(|_| self.fail("length does not fit"))
    }

    fn string(&mut self, n: usize) -> Result<Item> {
        let s = self.take(n)?;
        Ok(Item::leaf(Value::Str(
            String::from_utf8_lossy(s).into_owned(),
        )))
    }

    fn line(&mut self) -> Result<String> {
        let rest = self.p.get(self.i..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| self.fail("unterminated GLOBAL"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.i += n + 1;
        Ok(s)
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::leaf(v));
    }

    fn pop(&mut self) -> Result<Item> {
        self.stack.pop().ok_or_else(|| self.fail("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.fail("mark underflow"))?;
        if m > self.stack.len() {
            return Err(self.fail("mark past the stack"));
        }
        Ok(self.stack.split_off(m))
    }

    /// Counts the values a memo copy makes against the bound, before any
    /// is made.
    fn charge(&mut self, size: usize) -> Result<()> {
        self.work = self.work.saturating_add(size);
        if self.work > self.work_limit {
            return Err(PthError::TooMuchWork {
                limit: self.work_limit,
            });
        }
        Ok(())
    }

    fn memo_put(&mut self, k: u32) -> Result<()> {
        let Some(top) = self.stack.last() else {
            return Err(self.fail("memo of an empty stack"));
        };
        let size = top.size;
        self.charge(size)?;
        let top = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| self.fail("memo of an empty stack"))?;
        self.memo.insert(k, top);
        Ok(())
    }

    fn memo_get(&mut self, k: u32) -> Result<()> {
        let Some(size) = self.memo.get(&k).map(|i| i.size) else {
            return Err(self.fail("unknown memo key"));
        };
        self.charge(size)?;
        let item = self
            .memo
            .get(&k)
            .cloned()
            .ok_or_else(|| self.fail("unknown memo key"))?;
        self.stack.push(item);
        Ok(())
    }

    fn wrap(&mut self, items: Vec<Item>, make: impl FnOnce(Vec<Value>) -> Value) -> Result<()> {
        let item = Item::container(items, make)?;
        self.stack.push(item);
        Ok(())
    }

    fn extend_top(&mut self, items: Vec<Item>, dict: bool) -> Result<()> {
        match self.stack.last_mut() {
            Some(top) => top.extend(items, dict),
            None => Err(self.fail("set-item or append without an object")),
        }
    }

    /// Runs the stream as data and returns the top object.
    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.byte().map_err(|_| self.fail("ends without STOP"))?;
            match op {
                0x80 => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b')' => self.push(Value::Tuple(Vec::new())),
                b'N' => self.push(Value::None),
                0x88 | 0x89 => self.push(Value::Bool),
                b'(' => self.marks.push(self.stack.len()),
                b'q' => {
                    let k = self.byte()?;
                    self.memo_put(u32::from(k))?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k =
                        u32::try_from(self.memo.len()).map_err(|_| self.fail("memo overflow"))?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.byte()?;
                    self.memo_get(u32::from(k))?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'X' => {
                    let n = self.len32()?;
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                b'C' => {
                    let n = usize::from(self.byte()?);
                    self.take(n)?;
                    self.push(Value::Opaque);
                }
                b'B' => {
                    let n = self.len32()?;
                    self.take(n)?;
                    self.push(Value::Opaque);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?.value;
                    let module = self.pop()?.value;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n)),
                        _ => return Err(self.fail("STACK_GLOBAL of non-strings")),
                    }
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = usize::from(self.byte()?);
                    let bytes = self.take(n)?;
                    let v = long(bytes).ok_or_else(|| self.fail("integer too large"))?;
                    self.push(Value::Int(v));
                }
                b'G' => {
                    self.take(8)?;
                    self.push(Value::Float);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.wrap(items, Value::Tuple)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let from = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .ok_or_else(|| self.fail("stack underflow"))?;
                    let items = self.stack.split_off(from);
                    self.wrap(items, Value::Tuple)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.wrap(items, Value::List)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let mut dict = Item::container(Vec::new(), |_| Value::Dict(Vec::new()))?;
                    dict.extend(items, true)?;
                    self.stack.push(dict);
                }
                b'Q' => {
                    let pid = self.pop()?.value;
                    self.push(persistent(pid));
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?.value;
                    // What a callable returns is at most its arguments.
                    let (size, depth) = (args.size, args.depth);
                    let value = reduce(f, args.value)?;
                    self.stack.push(Item { value, size, depth });
                }
                0x81 => {
                    self.pop()?;
                    self.pop()?;
                    self.push(Value::Opaque);
                }
                b'b' => {
                    self.pop()?; // state of an object: not needed
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_top(vec![k, v], true)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, true)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, false)?;
                }
                b'.' => return Ok(self.pop()?.value),
                op => return Err(PthError::Opcode { at: self.i - 1, op }),
            }
        }
    }
}

/// A LONG1 integer: little-endian two's complement of up to 8 bytes.
fn long(bytes: &[u8]) -> Option<i64> {
    let n = bytes.len();
    if n > 8 {
        return None;
    }
    let mut v: i64 = 0;
    for (k, &byte) in bytes.iter().enumerate() {
        v |= i64::from(byte) << (8 * k);
    }
    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
        v -= 1i64 << (8 * n);
    }
    Some(v)
}

/// A persistent id `("storage", class, key, location, numel)`.
fn persistent(pid: Value) -> Value {
    match pid {
        Value::Tuple(xs) if xs.len() >= 3 => match (&xs[1], &xs[2]) {
            (Value::Global(_, class), Value::Str(key)) => {
                Value::Storage(class.clone(), key.clone())
            }
            _ => Value::Opaque,
        },
        _ => Value::Opaque,
    }
}

fn ints(v: &Value, what: &'static str) -> Result<Vec<usize>> {
    match v {
        Value::Tuple(xs) | Value::List(xs) => xs
            .iter()
            .map(|x| match x {
                Value::Int(i) => usize::try_from(*i).map_err(|_| PthError::BadTensor(what)),
                _ => Err(PthError::BadTensor(what)),
            })
            .collect(),
        _ => Err(PthError::BadTensor(what)),
    }
}

/// The few callables of a state dict, interpreted; everything else opaque.
fn reduce(f: Value, args: Value) -> Result<Value> {
    let Value::Global(module, name) = f else {
        return Ok(Value::Opaque);
    };
    let Value::Tuple(mut args) = args else {
        return Ok(Value::Opaque);
    };
    Ok(match (module.as_str(), name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") if args.len() >= 4 => {
            let Value::Storage(dtype, storage) = &args[0] else {
                return Err(PthError::BadTensor("storage"));
            };
            let Value::Int(offset) = args[1] else {
                return Err(PthError::BadTensor("storage offset"));
            };
            Value::Tensor {
                storage: storage.clone(),
                dtype: dtype.clone(),
                offset: usize::try_from(offset)
                    .map_err(|_| PthError::BadTensor("storage offset"))?,
                shape: ints(&args[2], "size")?,
                stride: ints(&args[3], "stride")?,
            }
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
            if !args.is_empty() =>
        {
            args.swap_remove(0)
        }
        ("collections", "OrderedDict") => Value::Dict(Vec::new()),
        _ => Value::Opaque,
    })
}

/// Whether the bytes look like a `torch.save` ZIP archive.
pub fn is_zip(b: &[u8]) -> bool {
    b.starts_with(b"PK\x03\x04")
}

/// Converts one stored element (its little-endian bytes) to f32.
type Convert = fn(&[u8]) -> f32;

/// Element types read as weights: bytes per element and the conversion.
fn element(dtype: &str) -> Option<(usize, Convert)> {
    Some(match dtype {
        "FloatStorage" => (4, |s| f32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        "DoubleStorage" => (8, |s| {
            f64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]) as f32
        }),
        "HalfStorage" => (2, |s| half::f16::from_le_bytes([s[0], s[1]]).to_f32()),
        "BFloat16Storage" => (2, |s| half::bf16::from_le_bytes([s[0], s[1]]).to_f32()),
        _ => return None,
    })
}

/// Reads every float tensor of a `torch.save` ZIP state dict (top level, or
/// under `state_dict` / `model` when the checkpoint wraps it).
///
/// # Errors
/// A [`PthError`] for anything malformed or beyond the bounds above.
pub fn read(b: &[u8]) -> Result<BTreeMap<String, RawTensor>> {
    let entries = zip_entries(b)?;
    let (pkl_name, pkl) = entries
        .iter()
        .find(|(n, _)| n.ends_with("/data.pkl") || n.as_str() == "data.pkl")
        .ok_or(PthError::NoPickle)?;
    let prefix = &pkl_name[..pkl_name.len() - "data.pkl".len()];
    if let Some(bo) = entries.get(&format!("{prefix}byteorder")) {
        if bo.bytes(b) != b"little" {
            return Err(PthError::BigEndian);
        }
    }
    let dict = match Machine::new(pkl.bytes(b)).run()? {
        Value::Dict(d) => {
            let nested = d.iter().position(|(k, v)| {
                matches!((k, v), (Value::Str(k), Value::Dict(_)) if k == "state_dict" || k == "model")
            });
            match nested {
                Some(i) => match d.into_iter().nth(i) {
                    Some((_, Value::Dict(inner))) => inner,
                    _ => return Err(PthError::NotADict),
                },
                None => d,
            }
        }
        _ => return Err(PthError::NotADict),
    };
    let mut budget = b.len().saturating_mul(VALUES_PER_BYTE);
    let mut out = BTreeMap::new();
    for (k, v) in dict {
        let (
            Value::Str(name),
            Value::Tensor {
                storage,
                dtype,
                offset,
                shape,
                stride,
            },
        ) = (k, v)
        else {
            continue;
        };
        // Integer buffers (e.g. batch counters) are no weights.
        let Some((size, convert)) = element(&dtype) else {
            continue;
        };
        let bytes = entries
            .get(&format!("{prefix}data/{storage}"))
            .ok_or_else(|| PthError::MissingStorage {
                name: name.clone(),
                storage,
            })?
            .bytes(b);
        if stride.len() != shape.len() {
            return Err(PthError::Rank(name));
        }
        let numel = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= budget)
            .ok_or_else(|| PthError::TooLarge(name.clone()))?;
        budget -= numel;
        if numel > 0 {
            // The element furthest into the storage must be in it.
            let last = shape.iter().zip(&stride).try_fold(offset, |at, (&n, &st)| {
                at.checked_add((n - 1).checked_mul(st)?)
            });
            let end = last
                .and_then(|l| l.checked_add(1))
                .and_then(|l| l.checked_mul(size));
            if end.is_none_or(|e| e > bytes.len()) {
                return Err(PthError::OutsideStorage(name));
            }
        }
        // Every index is at most `last`, so neither the sums nor the slices
        // below can overflow or leave the storage.
        let mut data = Vec::with_capacity(numel);
        let mut index = vec![0usize; shape.len()];
        for _ in 0..numel {
            let at = offset + index.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
            data.push(convert(&bytes[at * size..at * size + size]));
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        out.insert(name, RawTensor { shape, data });
    }
    Ok(out)
}
