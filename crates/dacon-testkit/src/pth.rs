//! `torch.save` checkpoints built byte by byte, for tests of the `.pth`
//! reader: a stored ZIP archive holding a pickle (`archive/data.pkl`) and
//! raw storages (`archive/data/<key>`), laid out as PyTorch writes them.
//! The builders write any pickle, so tests can also make hostile ones.

/// One tensor of a state dict: name, storage key, element type
/// (`FloatStorage`, `HalfStorage`, ...), offset in elements, shape, stride.
#[derive(Debug, Clone)]
pub struct TensorRef<'a> {
    /// Key in the state dict.
    pub name: &'a str,
    /// Storage key (the file `archive/data/<storage>`).
    pub storage: &'a str,
    /// Storage class name.
    pub dtype: &'a str,
    /// Offset in elements.
    pub offset: u64,
    /// Dimensions.
    pub shape: &'a [u64],
    /// Strides in elements.
    pub stride: &'a [u64],
}

/// CRC-32 (IEEE) of `bytes`, as ZIP records it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A ZIP archive of stored (uncompressed) entries.
///
/// # Panics
/// When an entry exceeds the 32-bit sizes of a plain (non-ZIP64) archive.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = u32::try_from(out.len()).expect("small archive");
        let size = u32::try_from(data.len()).expect("small entry");
        let name_len = u16::try_from(name.len()).expect("short name");
        let crc = crc32(data);
        // Local header: signature, version 2.0, flags, method 0 (stored),
        // time, date, crc, sizes, name length, no extra field.
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        // Extra, comment, disk, internal and external attributes: none.
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).expect("small archive");
    let cd_len = u32::try_from(central.len()).expect("small archive");
    let count = u16::try_from(entries.len()).expect("few entries");
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `torch.save` archive: the pickle and the storages, little-endian.
pub fn torch_zip(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let names: Vec<String> = storages
        .iter()
        .map(|(k, _)| format!("archive/data/{k}"))
        .collect();
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("archive/data.pkl", pickle),
        ("archive/byteorder", b"little"),
    ];
    entries.extend(
        names
            .iter()
            .zip(storages)
            .map(|(n, (_, b))| (n.as_str(), *b)),
    );
    zip(&entries)
}

/// A pickle string (SHORT_BINUNICODE or BINUNICODE).
fn string(out: &mut Vec<u8>, s: &str) {
    match u8::try_from(s.len()) {
        Ok(n) => {
            out.push(0x8c);
            out.push(n);
        }
        Err(_) => {
            out.push(b'X');
            out.extend_from_slice(&u32::try_from(s.len()).expect("short").to_le_bytes());
        }
    }
    out.extend_from_slice(s.as_bytes());
}

/// A pickle integer (LONG1, 8 bytes, so any `u64` bit pattern fits).
fn int(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&[0x8a, 8]);
    out.extend_from_slice(&v.to_le_bytes());
}

fn tuple(out: &mut Vec<u8>, xs: &[u64]) {
    out.push(b'(');
    for &x in xs {
        int(out, x);
    }
    out.push(b't');
}

/// The pickle of an `OrderedDict` state dict of tensors, as `torch.save`
/// writes it (`_rebuild_tensor_v2` over persistent storages).
pub fn state_dict_pickle(tensors: &[TensorRef<'_>]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend_from_slice(b"ccollections\nOrderedDict\n)R(");
    for t in tensors {
        string(&mut p, t.name);
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        // Persistent id: ("storage", class, key, location, numel).
        p.push(b'(');
        string(&mut p, "storage");
        p.extend_from_slice(format!("ctorch\n{}\n", t.dtype).as_bytes());
        string(&mut p, t.storage);
        string(&mut p, "cpu");
        // Element count (wrapping: hostile shapes may overflow it).
        int(&mut p, t.shape.iter().fold(1u64, |n, &d| n.wrapping_mul(d)));
        p.extend_from_slice(b"tQ");
        int(&mut p, t.offset);
        tuple(&mut p, t.shape);
        tuple(&mut p, t.stride);
        // requires_grad, backward hooks.
        p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)Rt");
        p.push(b'R');
    }
    p.extend_from_slice(b"u.");
    p
}

/// A checkpoint of float tensors with the given values, each in its own
/// contiguous storage.
pub fn float_checkpoint(tensors: &[(&str, &[u64], &[f32])]) -> Vec<u8> {
    let keys: Vec<String> = (0..tensors.len()).map(|i| i.to_string()).collect();
    let strides: Vec<Vec<u64>> = tensors
        .iter()
        .map(|(_, shape, _)| contiguous(shape))
        .collect();
    let refs: Vec<TensorRef<'_>> = tensors
        .iter()
        .zip(&keys)
        .zip(&strides)
        .map(|(((name, shape, _), key), stride)| TensorRef {
            name,
            storage: key,
            dtype: "FloatStorage",
            offset: 0,
            shape,
            stride,
        })
        .collect();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let storages: Vec<(&str, &[u8])> = keys
        .iter()
        .zip(&bytes)
        .map(|(k, b)| (k.as_str(), b.as_slice()))
        .collect();
    torch_zip(&state_dict_pickle(&refs), &storages)
}

/// Row-major strides of `shape`.
pub fn contiguous(shape: &[u64]) -> Vec<u64> {
    let mut stride = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * shape[d + 1];
    }
    stride
}

/// Hostile: a 2x2 float tensor whose first stride is 2^62-1, over a
/// 4-element storage (the view's end wraps around in 64-bit arithmetic).
pub fn huge_stride() -> Vec<u8> {
    let p = state_dict_pickle(&[TensorRef {
        name: "w",
        storage: "0",
        dtype: "FloatStorage",
        offset: 0,
        shape: &[2, 2],
        stride: &[(1 << 62) - 1, 1],
    }]);
    torch_zip(&p, &[("0", &[0u8; 16])])
}

/// Hostile: a pickle that doubles a memoised list `rounds` times with
/// BINGET copies (2^rounds elements from a few bytes per round).
pub fn memo_bomb(rounds: usize) -> Vec<u8> {
    let mut p = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..rounds {
        // MARK, GET 0, GET 0, LIST, PUT 0 (replacing the memo entry).
        p.extend_from_slice(b"(h\x00h\x00lq\x00");
    }
    p.push(b'.');
    torch_zip(&p, &[])
}

/// Hostile: `depth` lists nested in one another.
pub fn deep_nesting(depth: usize) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b'(', depth));
    p.extend(std::iter::repeat_n(b'l', depth));
    p.push(b'.');
    torch_zip(&p, &[])
}
