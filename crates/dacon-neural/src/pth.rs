//! A reader for `torch.save` ZIP checkpoints (state dicts) that treats the
//! pickle as data: a small pickle machine that knows only the opcodes and
//! the few callables a state dict uses, and executes nothing.
//!
//! Why our own: burn's reader (zip 9) refuses some valid checkpoints ("Invalid
//! Central Directory header" on files Python opens); a state dict needs only
//! stored ZIP entries and a dozen pickle opcodes, checked here for sizes and
//! offsets before anything is allocated.

use std::collections::BTreeMap;

/// A tensor of a checkpoint: element type name, shape and row-major bytes
/// converted to f32.
#[derive(Debug, Clone)]
pub struct PthTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

type Result<T> = std::result::Result<T, String>;

/// One stored ZIP entry: where its bytes are.
struct Entry {
    offset: usize,
    len: usize,
}

/// Reads the entries of a ZIP archive held in memory (stored only, as
/// `torch.save` writes them).
fn zip_entries(b: &[u8]) -> Result<BTreeMap<String, Entry>> {
    let u16_at = |p: usize| -> Result<usize> {
        b.get(p..p + 2)
            .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
            .ok_or_else(|| "truncated ZIP".to_string())
    };
    let u32_at = |p: usize| -> Result<usize> {
        b.get(p..p + 4)
            .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| "truncated ZIP".to_string())
    };
    let u64_at = |p: usize| -> Result<usize> {
        b.get(p..p + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| "truncated ZIP".to_string())
    };
    let lowest = b.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..=b.len().saturating_sub(22))
        .rev()
        .find(|&p| &b[p..p + 4] == b"PK\x05\x06")
        .ok_or("no ZIP end-of-directory record")?;
    let mut count = u16_at(eocd + 10)?;
    let mut cd_offset = u32_at(eocd + 16)?;
    if count == 0xffff || cd_offset == 0xffff_ffff {
        // ZIP64: the locator sits right before the end record.
        let loc = eocd.checked_sub(20).ok_or("truncated ZIP64 locator")?;
        if &b[loc..loc + 4] != b"PK\x06\x07" {
            return Err("missing ZIP64 locator".into());
        }
        let rec = u64_at(loc + 8)?;
        if b.get(rec..rec + 4) != Some(b"PK\x06\x06") {
            return Err("bad ZIP64 end record".into());
        }
        count = u64_at(rec + 32)?;
        cd_offset = u64_at(rec + 48)?;
    }
    let mut entries = BTreeMap::new();
    let mut p = cd_offset;
    for _ in 0..count {
        if b.get(p..p + 4) != Some(b"PK\x01\x02") {
            return Err("bad ZIP central directory entry".into());
        }
        let method = u16_at(p + 10)?;
        let mut size = u32_at(p + 20)?;
        let name_len = u16_at(p + 28)?;
        let extra_len = u16_at(p + 30)?;
        let comment_len = u16_at(p + 32)?;
        let mut local = u32_at(p + 42)?;
        let name = b
            .get(p + 46..p + 46 + name_len)
            .ok_or("truncated ZIP name")?;
        let name = String::from_utf8_lossy(name).into_owned();
        // ZIP64 extra field: the 64-bit values of the fields set to ~0.
        let mut e = p + 46 + name_len;
        let extra_end = e + extra_len;
        while e + 4 <= extra_end {
            let (id, len) = (u16_at(e)?, u16_at(e + 2)?);
            if id == 1 {
                let mut q = e + 4;
                if u32_at(p + 24)? == 0xffff_ffff {
                    q += 8; // uncompressed size
                }
                if size == 0xffff_ffff {
                    size = u64_at(q)?;
                    q += 8;
                }
                if local == 0xffff_ffff {
                    local = u64_at(q)?;
                }
            }
            e += 4 + len;
        }
        if method != 0 {
            return Err(format!(
                "ZIP entry {name} is compressed; torch.save stores entries"
            ));
        }
        if b.get(local..local + 4) != Some(b"PK\x03\x04") {
            return Err(format!("bad local header of {name}"));
        }
        let data = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        if data.checked_add(size).is_none_or(|end| end > b.len()) {
            return Err(format!("ZIP entry {name} runs past the end of the file"));
        }
        entries.insert(
            name,
            Entry {
                offset: data,
                len: size,
            },
        );
        p = extra_end + comment_len;
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

fn ints(v: &Value) -> Result<Vec<usize>> {
    match v {
        Value::Tuple(xs) | Value::List(xs) => xs
            .iter()
            .map(|x| match x {
                Value::Int(i) if *i >= 0 => Ok(*i as usize),
                _ => Err("tensor size or stride is not a list of integers".to_string()),
            })
            .collect(),
        _ => Err("tensor size or stride is not a tuple".into()),
    }
}

/// Runs a pickle stream as data and returns the top object.
fn unpickle(p: &[u8]) -> Result<Value> {
    let mut stack: Vec<Value> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: BTreeMap<usize, Value> = BTreeMap::new();
    let mut i = 0usize;
    let take = |i: &mut usize, n: usize| -> Result<&[u8]> {
        let s = p.get(*i..*i + n).ok_or("truncated pickle")?;
        *i += n;
        Ok(s)
    };
    let pop = |stack: &mut Vec<Value>| {
        stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    };
    let pop_mark = |stack: &mut Vec<Value>, marks: &mut Vec<usize>| -> Result<Vec<Value>> {
        let m = marks.pop().ok_or("pickle mark underflow")?;
        if m > stack.len() {
            return Err("pickle mark past the stack".into());
        }
        Ok(stack.split_off(m))
    };
    loop {
        let op = *p.get(i).ok_or("pickle ends without STOP")?;
        i += 1;
        match op {
            0x80 => {
                take(&mut i, 1)?;
            }
            0x95 => {
                take(&mut i, 8)?;
            }
            b'}' => stack.push(Value::Dict(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool),
            0x89 => stack.push(Value::Bool),
            b'(' => marks.push(stack.len()),
            b'q' => {
                let k = usize::from(take(&mut i, 1)?[0]);
                memo.insert(k, stack.last().cloned().ok_or("memo of empty stack")?);
            }
            b'r' => {
                let k = u32::from_le_bytes(take(&mut i, 4)?.try_into().expect("4")) as usize;
                memo.insert(k, stack.last().cloned().ok_or("memo of empty stack")?);
            }
            0x94 => {
                let k = memo.len();
                memo.insert(k, stack.last().cloned().ok_or("memo of empty stack")?);
            }
            b'h' => {
                let k = usize::from(take(&mut i, 1)?[0]);
                stack.push(memo.get(&k).cloned().ok_or("unknown memo key")?);
            }
            b'j' => {
                let k = u32::from_le_bytes(take(&mut i, 4)?.try_into().expect("4")) as usize;
                stack.push(memo.get(&k).cloned().ok_or("unknown memo key")?);
            }
            b'X' => {
                let n = u32::from_le_bytes(take(&mut i, 4)?.try_into().expect("4")) as usize;
                stack.push(Value::Str(
                    String::from_utf8_lossy(take(&mut i, n)?).into_owned(),
                ));
            }
            0x8c => {
                let n = usize::from(take(&mut i, 1)?[0]);
                stack.push(Value::Str(
                    String::from_utf8_lossy(take(&mut i, n)?).into_owned(),
                ));
            }
            b'C' => {
                let n = usize::from(take(&mut i, 1)?[0]);
                take(&mut i, n)?;
                stack.push(Value::Opaque);
            }
            b'B' => {
                let n = u32::from_le_bytes(take(&mut i, 4)?.try_into().expect("4")) as usize;
                take(&mut i, n)?;
                stack.push(Value::Opaque);
            }
            b'c' => {
                let line = |i: &mut usize| -> Result<String> {
                    let rest = p.get(*i..).ok_or("truncated pickle")?;
                    let n = rest
                        .iter()
                        .position(|&c| c == b'\n')
                        .ok_or("unterminated GLOBAL")?;
                    let s = String::from_utf8_lossy(&rest[..n]).into_owned();
                    *i += n + 1;
                    Ok(s)
                };
                let module = line(&mut i)?;
                let name = line(&mut i)?;
                stack.push(Value::Global(module, name));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Value::Global(m, n)),
                    _ => return Err("STACK_GLOBAL of non-strings".into()),
                }
            }
            b'J' => stack.push(Value::Int(i64::from(i32::from_le_bytes(
                take(&mut i, 4)?.try_into().expect("4"),
            )))),
            b'K' => stack.push(Value::Int(i64::from(take(&mut i, 1)?[0]))),
            b'M' => stack.push(Value::Int(i64::from(u16::from_le_bytes(
                take(&mut i, 2)?.try_into().expect("2"),
            )))),
            0x8a => {
                let n = usize::from(take(&mut i, 1)?[0]);
                let bytes = take(&mut i, n)?;
                if n > 8 {
                    return Err("integer too large".into());
                }
                let mut v: i64 = 0;
                for (k, &byte) in bytes.iter().enumerate() {
                    v |= i64::from(byte) << (8 * k);
                }
                if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            b'G' => {
                take(&mut i, 8)?;
                stack.push(Value::Float);
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::List(items));
            }
            b'd' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Dict(pairs(items)?));
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(match pid {
                    Value::Tuple(xs) if xs.len() >= 3 => match (&xs[1], &xs[2]) {
                        (Value::Global(_, class), Value::Str(key)) => {
                            Value::Storage(class.clone(), key.clone())
                        }
                        _ => Value::Opaque,
                    },
                    _ => Value::Opaque,
                });
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                stack.push(reduce(f, args)?);
            }
            0x81 => {
                pop(&mut stack)?;
                pop(&mut stack)?;
                stack.push(Value::Opaque);
            }
            b'b' => {
                pop(&mut stack)?; // state of an object: not needed
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.push((k, v)),
                    Some(_) => {}
                    None => return Err("SETITEM without a dict".into()),
                }
            }
            b'u' => {
                let items = pairs(pop_mark(&mut stack, &mut marks)?)?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.extend(items),
                    Some(_) => {}
                    None => return Err("SETITEMS without a dict".into()),
                }
            }
            b'a' => {
                let v = pop(&mut stack)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.push(v);
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.extend(items);
                }
            }
            b'.' => return pop(&mut stack),
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
    if items.len() % 2 != 0 {
        return Err("odd number of dict items".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// The few callables of a state dict, interpreted; everything else opaque.
fn reduce(f: Value, args: Value) -> Result<Value> {
    let Value::Global(module, name) = f else {
        return Ok(Value::Opaque);
    };
    let Value::Tuple(args) = args else {
        return Ok(Value::Opaque);
    };
    Ok(match (module.as_str(), name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") if args.len() >= 4 => {
            let Value::Storage(dtype, storage) = &args[0] else {
                return Err("tensor without storage".into());
            };
            let Value::Int(offset) = args[1] else {
                return Err("tensor storage offset is not an integer".into());
            };
            Value::Tensor {
                storage: storage.clone(),
                dtype: dtype.clone(),
                offset: usize::try_from(offset).map_err(|_| "negative storage offset")?,
                shape: ints(&args[2])?,
                stride: ints(&args[3])?,
            }
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
            if !args.is_empty() =>
        {
            args[0].clone()
        }
        ("collections", "OrderedDict") => Value::Dict(Vec::new()),
        _ => Value::Opaque,
    })
}

/// Whether the bytes look like a `torch.save` ZIP archive.
pub fn is_zip(b: &[u8]) -> bool {
    b.starts_with(b"PK\x03\x04")
}

/// Reads every float tensor of a `torch.save` ZIP state dict (top level, or
/// under `state_dict` / `model` when the checkpoint wraps it).
pub fn read(b: &[u8]) -> Result<BTreeMap<String, PthTensor>> {
    let entries = zip_entries(b)?;
    let (pkl_name, pkl) = entries
        .iter()
        .find(|(n, _)| n.ends_with("/data.pkl") || n.as_str() == "data.pkl")
        .ok_or("no data.pkl in the archive (not a torch.save file)")?;
    let prefix = &pkl_name[..pkl_name.len() - "data.pkl".len()];
    if let Some(bo) = entries.get(&format!("{prefix}byteorder")) {
        if &b[bo.offset..bo.offset + bo.len] != b"little" {
            return Err("big-endian checkpoints are not supported".into());
        }
    }
    let top = unpickle(&b[pkl.offset..pkl.offset + pkl.len])?;
    let dict = match top {
        Value::Dict(d) => {
            let nested = d.iter().find_map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Dict(inner)) if k == "state_dict" || k == "model" => {
                    Some(inner.clone())
                }
                _ => None,
            });
            nested.unwrap_or(d)
        }
        _ => return Err("the checkpoint is not a dictionary of tensors".into()),
    };
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
        let size = match dtype.as_str() {
            "FloatStorage" | "HalfStorage" | "BFloat16Storage" => {
                if dtype == "FloatStorage" {
                    4
                } else {
                    2
                }
            }
            "DoubleStorage" => 8,
            _ => continue, // integer buffers (e.g. batch counters) are no weights
        };
        let entry = entries
            .get(&format!("{prefix}data/{storage}"))
            .ok_or_else(|| format!("storage {storage} of {name} is missing"))?;
        let bytes = &b[entry.offset..entry.offset + entry.len];
        let numel: usize = shape.iter().product();
        if stride.len() != shape.len() {
            return Err(format!("{name}: stride and shape differ in rank"));
        }
        // Highest element index read, checked against the storage size.
        let last = offset
            + shape
                .iter()
                .zip(&stride)
                .map(|(&s, &st)| s.saturating_sub(1) * st)
                .sum::<usize>();
        if numel > 0 && (last + 1) * size > bytes.len() {
            return Err(format!("{name}: tensor runs past its storage"));
        }
        let read = |idx: usize| -> f32 {
            let s = &bytes[idx * size..idx * size + size];
            match size {
                4 => f32::from_le_bytes(s.try_into().expect("4")),
                8 => f64::from_le_bytes(s.try_into().expect("8")) as f32,
                _ => {
                    let h = u16::from_le_bytes(s.try_into().expect("2"));
                    if dtype == "HalfStorage" {
                        crate::weights::f16_to_f32(h)
                    } else {
                        f32::from_bits(u32::from(h) << 16)
                    }
                }
            }
        };
        let mut data = Vec::with_capacity(numel);
        let mut index = vec![0usize; shape.len()];
        for _ in 0..numel {
            let at = offset + index.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
            data.push(read(at));
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        out.insert(name, PthTensor { shape, data });
    }
    Ok(out)
}
