//! A small pickle decoder for the subset `torch.save` writes. It builds plain values and
//! **never executes anything**: GLOBAL / STACK_GLOBAL are resolved against an allow-list of
//! symbols (tensor rebuild functions, storage types, `collections.OrderedDict`), REDUCE "calls"
//! only those by interpreting their arguments here, and persistent ids become storage
//! references. Any other opcode or symbol is an error naming it and its byte offset.
//!
//! Supported opcodes: PROTO, FRAME, STOP, MARK, POP, POP_MARK, DUP, NONE, NEWTRUE, NEWFALSE,
//! BININT, BININT1, BININT2, LONG1, LONG4 (up to 8 bytes), BINFLOAT, BINUNICODE,
//! SHORT_BINUNICODE, BINUNICODE8, BINBYTES, SHORT_BINBYTES, BINBYTES8, EMPTY_TUPLE, TUPLE,
//! TUPLE1-3, EMPTY_LIST, LIST, APPEND, APPENDS, EMPTY_DICT, DICT, SETITEM, SETITEMS, BINPUT,
//! LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET, GLOBAL, STACK_GLOBAL, REDUCE, BUILD, BINPERSID.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::Dtype;

/// A decoded pickle value. Lists and dictionaries are shared (`Rc<RefCell>`) because the memo
/// refers to the same object that later opcodes fill.
// Scalar payloads are decoded for fidelity (and Debug output) even where no caller reads them.
#[allow(dead_code)]
#[derive(Clone, Debug)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Value]>),
    List(Shared<Vec<Value>>),
    Dict(Shared<DictItems>),
    Symbol(Symbol),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

/// A mutable container shared between the stack and the memo.
pub(crate) type Shared<T> = Rc<RefCell<T>>;

/// A dict's entries in insertion order (keys need not be hashable here).
pub(crate) type DictItems = Vec<(Value, Value)>;

/// The only Python names a pickle may mention.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Symbol {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    RebuildParameterWithState,
    StorageType(Dtype),
}

/// A storage named by a persistent id `('storage', type, key, location, numel)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StorageRef {
    pub dtype: Dtype,
    /// The archive member `data/<key>`.
    pub key: String,
    /// Element count (of `dtype`).
    pub numel: u64,
}

/// A tensor view into a storage (`_rebuild_tensor_v2` arguments), all counts in elements.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: u64,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// Why a pickle was refused.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PickleError {
    /// An opcode outside the supported subset.
    Opcode { opcode: u8, offset: usize },
    /// A GLOBAL naming something other than the allowed symbols.
    Forbidden { symbol: String, offset: usize },
    /// Structurally wrong (truncated, bad arguments, stack underflow …).
    Malformed { message: String, offset: usize },
    /// Containers nested deeper than [`MAX_DEPTH`] (no checkpoint does that; a hostile file
    /// could, to exhaust the stack).
    TooDeep,
}

/// Deepest container nesting [`read_tensors`] follows.
pub(crate) const MAX_DEPTH: usize = 256;

/// Decodes a pickle and returns its tensors as `(dotted.name, view)` pairs (see
/// [`collect_tensors`]). Everything else is dropped, without recursion.
pub(crate) fn read_tensors(data: &[u8]) -> Result<Vec<(String, Rc<TensorRef>)>, PickleError> {
    let root = parse(data)?;
    let tensors = collect_tensors(&root);
    dispose([root]);
    tensors
}

/// Drops values without recursing into containers: a hostile pickle can nest a million levels
/// in a few bytes each, and the default recursive drop would overflow the stack. A container
/// is emptied (its children queued) only when this is its last reference.
fn dispose(values: impl IntoIterator<Item = Value>) {
    let mut work: Vec<Value> = values.into_iter().collect();
    while let Some(value) = work.pop() {
        match value {
            Value::Tuple(mut items) => {
                if let Some(items) = Rc::get_mut(&mut items) {
                    work.extend(items.iter_mut().map(|v| std::mem::replace(v, Value::None)));
                }
            }
            Value::List(mut list) => {
                if let Some(list) = Rc::get_mut(&mut list) {
                    work.append(list.get_mut());
                }
            }
            Value::Dict(mut dict) => {
                if let Some(dict) = Rc::get_mut(&mut dict) {
                    for (key, value) in dict.get_mut().drain(..) {
                        work.push(key);
                        work.push(value);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Drop for Machine<'_> {
    fn drop(&mut self) {
        let memo = std::mem::take(&mut self.memo).into_values();
        dispose(std::mem::take(&mut self.stack).into_iter().chain(memo));
    }
}

fn resolve(module: &str, name: &str) -> Option<Symbol> {
    let symbol = match (module, name) {
        ("collections", "OrderedDict") => Symbol::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Symbol::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor") => Symbol::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Symbol::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Symbol::RebuildParameterWithState,
        ("torch", storage) => Symbol::StorageType(match storage {
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "LongStorage" => Dtype::Other("i64".into()),
            "IntStorage" => Dtype::Other("i32".into()),
            "ShortStorage" => Dtype::Other("i16".into()),
            "CharStorage" => Dtype::Other("i8".into()),
            "ByteStorage" => Dtype::Other("u8".into()),
            "BoolStorage" => Dtype::Other("bool".into()),
            "ComplexFloatStorage" => Dtype::Other("c64".into()),
            "ComplexDoubleStorage" => Dtype::Other("c128".into()),
            _ => return None,
        }),
        _ => return None,
    };
    Some(symbol)
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed (for messages).
    op_offset: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

/// Decodes a whole pickle stream and returns the value STOP leaves. The caller must drop it with
/// [`dispose`].
fn parse(data: &[u8]) -> Result<Value, PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        op_offset: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        m.op_offset = m.pos;
        let op = m.byte()?;
        match op {
            0x80 => {
                let protocol = m.byte()?;
                if protocol > 5 {
                    return Err(m.malformed(format!("unknown pickle protocol {protocol}")));
                }
            }
            0x95 => {
                m.take(8)?;
            }
            b'.' => {
                let value = m.pop()?;
                return Ok(value);
            }
            b'(' => m.marks.push(m.stack.len()),
            b'0' => {
                m.pop()?;
            }
            b'1' => {
                m.pop_mark()?;
            }
            b'2' => {
                let top = m.top()?.clone();
                m.stack.push(top);
            }
            b'N' => m.stack.push(Value::None),
            0x88 => m.stack.push(Value::Bool(true)),
            0x89 => m.stack.push(Value::Bool(false)),
            b'J' => {
                let b = m.take(4)?;
                let v = i32::from_le_bytes(b.try_into().expect("4 bytes"));
                m.stack.push(Value::Int(i64::from(v)));
            }
            b'K' => {
                let v = m.byte()?;
                m.stack.push(Value::Int(i64::from(v)));
            }
            b'M' => {
                let b = m.take(2)?;
                m.stack
                    .push(Value::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
            }
            0x8a => {
                let n = usize::from(m.byte()?);
                let v = m.long(n)?;
                m.stack.push(Value::Int(v));
            }
            0x8b => {
                let n = m.u32()? as usize;
                let v = m.long(n)?;
                m.stack.push(Value::Int(v));
            }
            b'G' => {
                let b = m.take(8)?;
                m.stack.push(Value::Float(f64::from_be_bytes(
                    b.try_into().expect("8 bytes"),
                )));
            }
            b'X' => {
                let n = m.u32()? as u64;
                m.push_str(n)?;
            }
            0x8c => {
                let n = u64::from(m.byte()?);
                m.push_str(n)?;
            }
            0x8d => {
                let n = m.u64()?;
                m.push_str(n)?;
            }
            b'B' => {
                let n = m.u32()? as u64;
                m.push_bytes(n)?;
            }
            b'C' => {
                let n = u64::from(m.byte()?);
                m.push_bytes(n)?;
            }
            0x8e => {
                let n = m.u64()?;
                m.push_bytes(n)?;
            }
            b')' => m.stack.push(Value::Tuple(Rc::from(Vec::new()))),
            b't' => {
                let items = m.pop_mark()?;
                m.stack.push(Value::Tuple(Rc::from(items)));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if m.stack.len() < n + m.marks.last().copied().unwrap_or(0) {
                    return Err(m.malformed("stack underflow"));
                }
                let items = m.stack.split_off(m.stack.len() - n);
                m.stack.push(Value::Tuple(Rc::from(items)));
            }
            b']' => m.stack.push(Value::List(Rc::default())),
            b'l' => {
                let items = m.pop_mark()?;
                m.stack.push(Value::List(Rc::new(RefCell::new(items))));
            }
            b'a' => {
                let value = m.pop()?;
                m.list_top()?.borrow_mut().push(value);
            }
            b'e' => {
                let items = m.pop_mark()?;
                m.list_top()?.borrow_mut().extend(items);
            }
            b'}' => m.stack.push(Value::Dict(Rc::default())),
            b'd' => {
                let items = m.pop_mark()?;
                let pairs = m.pairs(items)?;
                m.stack.push(Value::Dict(Rc::new(RefCell::new(pairs))));
            }
            b's' => {
                let value = m.pop()?;
                let key = m.pop()?;
                m.dict_top()?.borrow_mut().push((key, value));
            }
            b'u' => {
                let items = m.pop_mark()?;
                let pairs = m.pairs(items)?;
                m.dict_top()?.borrow_mut().extend(pairs);
            }
            b'q' => {
                let index = u64::from(m.byte()?);
                m.memoize(index)?;
            }
            b'r' => {
                let index = u64::from(m.u32()?);
                m.memoize(index)?;
            }
            0x94 => {
                let index = m.memo.len() as u64;
                m.memoize(index)?;
            }
            b'h' => {
                let index = u64::from(m.byte()?);
                m.memo_get(index)?;
            }
            b'j' => {
                let index = u64::from(m.u32()?);
                m.memo_get(index)?;
            }
            b'c' => {
                let module = m.line()?;
                let name = m.line()?;
                let symbol = m.symbol(&module, &name)?;
                m.stack.push(Value::Symbol(symbol));
            }
            0x93 => {
                let name = m.pop()?;
                let module = m.pop()?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err(m.malformed("STACK_GLOBAL needs two strings"));
                };
                let symbol = m.symbol(&module, &name)?;
                m.stack.push(Value::Symbol(symbol));
            }
            b'R' => {
                let args = m.pop()?;
                let callable = m.pop()?;
                let result = m.reduce(callable, args)?;
                m.stack.push(result);
            }
            b'b' => {
                let _state = m.pop()?;
                match m.top()? {
                    // OrderedDict state (`_metadata`) and tensor state carry nothing we need.
                    Value::Dict(_) | Value::Tensor(_) => {}
                    other => {
                        let kind = kind(other);
                        return Err(m.malformed(format!("BUILD on a {kind} is not supported")));
                    }
                }
            }
            b'Q' => {
                let pid = m.pop()?;
                let storage = m.persistent_load(pid)?;
                m.stack.push(Value::Storage(Rc::new(storage)));
            }
            opcode => {
                return Err(PickleError::Opcode {
                    opcode,
                    offset: m.op_offset,
                });
            }
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Symbol(_) => "global",
        Value::Storage(_) => "storage",
        Value::Tensor(_) => "tensor",
    }
}

impl<'a> Machine<'a> {
    fn malformed(&self, message: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            message: message.into(),
            offset: self.op_offset,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len());
        let Some(end) = end else {
            return Err(self.malformed(format!(
                "pickle truncated: needs {n} more bytes at byte {}",
                self.pos
            )));
        };
        let data: &'a [u8] = self.data;
        let slice = &data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        if self.pos >= self.data.len() {
            return Err(self.malformed("pickle ends without a STOP opcode"));
        }
        self.pos += 1;
        Ok(self.data[self.pos - 1])
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn long(&mut self, n: usize) -> Result<i64, PickleError> {
        if n > 8 {
            return Err(self.malformed(format!("integer of {n} bytes does not fit in 64 bits")));
        }
        let bytes = self.take(n)?;
        if n == 0 {
            return Ok(0);
        }
        let negative = bytes[n - 1] & 0x80 != 0;
        let mut buf = [if negative { 0xff } else { 0 }; 8];
        buf[..n].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buf))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.malformed("GLOBAL without a newline"));
        };
        let text = std::str::from_utf8(&rest[..end])
            .map_err(|_| self.malformed("GLOBAL name is not UTF-8"))?
            .to_string();
        self.pos += end + 1;
        Ok(text)
    }

    fn length(&self, n: u64) -> Result<usize, PickleError> {
        usize::try_from(n).map_err(|_| self.malformed(format!("length {n} is too large")))
    }

    fn push_str(&mut self, n: u64) -> Result<(), PickleError> {
        let n = self.length(n)?;
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| PickleError::Malformed {
                message: "string is not valid UTF-8".into(),
                offset: self.op_offset,
            })?
            .to_string();
        self.stack.push(Value::Str(Rc::from(text)));
        Ok(())
    }

    fn push_bytes(&mut self, n: u64) -> Result<(), PickleError> {
        let n = self.length(n)?;
        let bytes = Rc::from(self.take(n)?);
        self.stack.push(Value::Bytes(bytes));
        Ok(())
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }

    fn top(&self) -> Result<&Value, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        Ok(self.stack.last().expect("checked non-empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.malformed("no MARK on the stack"));
        };
        if mark > self.stack.len() {
            return Err(self.malformed("MARK above the stack top"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn list_top(&self) -> Result<Shared<Vec<Value>>, PickleError> {
        match self.top()? {
            Value::List(list) => Ok(Rc::clone(list)),
            other => Err(self.malformed(format!("APPEND to a {}, expected a list", kind(other)))),
        }
    }

    fn dict_top(&self) -> Result<Shared<DictItems>, PickleError> {
        match self.top()? {
            Value::Dict(dict) => Ok(Rc::clone(dict)),
            other => Err(self.malformed(format!("SETITEM on a {}, expected a dict", kind(other)))),
        }
    }

    fn pairs(&self, items: Vec<Value>) -> Result<DictItems, PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("odd number of items for a dict"));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut iter = items.into_iter();
        while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
            pairs.push((k, v));
        }
        Ok(pairs)
    }

    fn memoize(&mut self, index: u64) -> Result<(), PickleError> {
        let top = self.top()?.clone();
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), PickleError> {
        match self.memo.get(&index) {
            Some(value) => {
                let value = value.clone();
                self.stack.push(value);
                Ok(())
            }
            None => Err(self.malformed(format!("memo entry {index} is not defined"))),
        }
    }

    fn symbol(&self, module: &str, name: &str) -> Result<Symbol, PickleError> {
        resolve(module, name).ok_or_else(|| PickleError::Forbidden {
            symbol: format!("{module}.{name}"),
            offset: self.op_offset,
        })
    }

    fn reduce(&self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Symbol(symbol) = callable else {
            return Err(self.malformed(format!("REDUCE of a {}", kind(&callable))));
        };
        let Value::Tuple(args) = args else {
            return Err(self.malformed("REDUCE arguments are not a tuple"));
        };
        match symbol {
            Symbol::OrderedDict => match &args[..] {
                [] => Ok(Value::Dict(Rc::default())),
                [Value::List(items)] => {
                    let mut pairs = Vec::new();
                    for item in items.borrow().iter() {
                        match item {
                            Value::Tuple(pair) if pair.len() == 2 => {
                                pairs.push((pair[0].clone(), pair[1].clone()))
                            }
                            _ => return Err(self.malformed("OrderedDict items are not pairs")),
                        }
                    }
                    Ok(Value::Dict(Rc::new(RefCell::new(pairs))))
                }
                _ => Err(self.malformed("unexpected OrderedDict arguments")),
            },
            Symbol::RebuildTensorV2 | Symbol::RebuildTensor => self.rebuild_tensor(&args),
            Symbol::RebuildParameter | Symbol::RebuildParameterWithState => match args.first() {
                Some(tensor @ Value::Tensor(_)) => Ok(tensor.clone()),
                _ => Err(self.malformed("_rebuild_parameter expects a tensor")),
            },
            Symbol::StorageType(_) => Err(self.malformed("a storage type cannot be called")),
        }
    }

    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value, PickleError> {
        let [storage, offset, size, stride, ..] = args else {
            return Err(self.malformed(format!(
                "_rebuild_tensor_v2 needs at least 4 arguments, got {}",
                args.len()
            )));
        };
        let Value::Storage(storage) = storage else {
            return Err(self.malformed(format!(
                "_rebuild_tensor_v2: first argument is a {}, expected a storage",
                kind(storage)
            )));
        };
        let Value::Int(offset) = *offset else {
            return Err(self.malformed("_rebuild_tensor_v2: storage offset is not an integer"));
        };
        let offset = u64::try_from(offset)
            .map_err(|_| self.malformed("_rebuild_tensor_v2: negative storage offset"))?;
        let shape = self.int_tuple(size, "size")?;
        let stride = self.int_tuple(stride, "stride")?;
        if shape.len() != stride.len() {
            return Err(self.malformed(format!(
                "_rebuild_tensor_v2: size has {} dimensions but stride has {}",
                shape.len(),
                stride.len()
            )));
        }
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage: Rc::clone(storage),
            offset,
            shape,
            stride,
        })))
    }

    fn int_tuple(&self, value: &Value, what: &str) -> Result<Vec<usize>, PickleError> {
        let Value::Tuple(items) = value else {
            return Err(self.malformed(format!("_rebuild_tensor_v2: {what} is not a tuple")));
        };
        items
            .iter()
            .map(|v| match v {
                Value::Int(i) => usize::try_from(*i).ok(),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                self.malformed(format!(
                    "_rebuild_tensor_v2: {what} must hold non-negative integers"
                ))
            })
    }

    fn persistent_load(&self, pid: Value) -> Result<StorageRef, PickleError> {
        let Value::Tuple(items) = pid else {
            return Err(self.malformed(format!(
                "persistent id is a {}, expected ('storage', type, key, location, numel)",
                kind(&pid)
            )));
        };
        match &items[..] {
            [
                Value::Str(tag),
                Value::Symbol(Symbol::StorageType(dtype)),
                key,
                _location,
                Value::Int(numel),
            ] if &**tag == "storage" => {
                let key = match key {
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    _ => return Err(self.malformed("storage key is neither a string nor an int")),
                };
                let numel =
                    u64::try_from(*numel).map_err(|_| self.malformed("negative storage size"))?;
                Ok(StorageRef {
                    dtype: dtype.clone(),
                    key,
                    numel,
                })
            }
            _ => Err(self.malformed(
                "persistent id is not ('storage', torch.*Storage, key, location, numel)",
            )),
        }
    }
}

/// Flattens nested dicts, lists and tuples into `(dotted.name, tensor)` pairs, in pickle order.
/// A lone tensor is named `tensor`. Each container is expanded once, so shared or cyclic
/// structures cannot blow up; nesting beyond [`MAX_DEPTH`] is an error.
fn collect_tensors(root: &Value) -> Result<Vec<(String, Rc<TensorRef>)>, PickleError> {
    fn join(prefix: &str, key: &str) -> String {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    }
    struct Walk {
        seen: HashSet<usize>,
        out: Vec<(String, Rc<TensorRef>)>,
    }
    impl Walk {
        fn first_visit<T: ?Sized>(&mut self, rc: &Rc<T>) -> bool {
            self.seen.insert(Rc::as_ptr(rc) as *const u8 as usize)
        }

        fn visit(&mut self, value: &Value, prefix: &str, depth: usize) -> Result<(), PickleError> {
            if depth > MAX_DEPTH {
                return Err(PickleError::TooDeep);
            }
            match value {
                Value::Tensor(t) => {
                    let name = if prefix.is_empty() { "tensor" } else { prefix };
                    self.out.push((name.to_string(), Rc::clone(t)));
                }
                Value::Dict(d) if self.first_visit(d) => {
                    for (key, child) in d.borrow().iter() {
                        let key = match key {
                            Value::Str(s) => s.to_string(),
                            Value::Int(i) => i.to_string(),
                            _ => continue,
                        };
                        self.visit(child, &join(prefix, &key), depth + 1)?;
                    }
                }
                Value::List(l) if self.first_visit(l) => {
                    for (i, child) in l.borrow().iter().enumerate() {
                        self.visit(child, &join(prefix, &i.to_string()), depth + 1)?;
                    }
                }
                Value::Tuple(t) if self.first_visit(t) => {
                    for (i, child) in t.iter().enumerate() {
                        self.visit(child, &join(prefix, &i.to_string()), depth + 1)?;
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }
    let mut walk = Walk {
        seen: HashSet::new(),
        out: Vec::new(),
    };
    walk.visit(root, "", 0)?;
    Ok(walk.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_dict_of_scalars() {
        // {'a': 1, 'b': [2.5, True]} with protocol 2.
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(G@\x04\x00\x00\x00\x00\x00\x00\x88eu.";
        let value = parse(bytes).unwrap();
        let Value::Dict(d) = value else {
            panic!("not a dict")
        };
        assert_eq!(d.borrow().len(), 2);
        let Value::List(l) = &d.borrow()[1].1 else {
            panic!("not a list")
        };
        assert!(matches!(l.borrow()[0], Value::Float(x) if x == 2.5));
    }

    #[test]
    fn refuses_unknown_globals_and_opcodes() {
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.";
        assert_eq!(
            parse(evil).unwrap_err(),
            PickleError::Forbidden {
                symbol: "posix.system".into(),
                offset: 2
            }
        );
        assert_eq!(
            parse(b"\x80\x02\x81.").unwrap_err(),
            PickleError::Opcode {
                opcode: 0x81,
                offset: 2
            }
        );
    }

    #[test]
    fn negative_long1_and_truncation() {
        let value = parse(b"\x8a\x02\x00\xff.").unwrap();
        assert!(matches!(value, Value::Int(-256)));
        assert!(matches!(
            parse(b"X\xff\x00\x00\x00ab"),
            Err(PickleError::Malformed { .. })
        ));
    }

    #[test]
    fn self_referencing_list_terminates() {
        // l = []; l.append(l)
        assert!(read_tensors(b"]q\x00h\x00a.").unwrap().is_empty());
    }

    #[test]
    fn deep_nesting_neither_overflows_nor_is_followed() {
        // 1,000,000 nested 1-tuples: EMPTY_TUPLE, then TUPLE1 repeated.
        let mut bytes = vec![b')'];
        bytes.extend(std::iter::repeat_n(0x85, 1_000_000));
        bytes.push(b'.');
        assert_eq!(read_tensors(&bytes), Err(PickleError::TooDeep));
        // The same depth of lists, built with APPEND, and left on the stack by an error.
        let mut bytes = vec![b']'; 500_000];
        bytes.extend(std::iter::repeat_n(b'a', 499_999));
        bytes.push(0x81);
        assert!(matches!(
            read_tensors(&bytes),
            Err(PickleError::Opcode { opcode: 0x81, .. })
        ));
    }
}
