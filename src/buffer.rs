//! Large zero-initialised buffers, backed by transparent huge pages where the OS offers them.
//!
//! A fresh allocation of tens of MB is faulted in 4 KiB page by page when it is first written:
//! the 55 MB of stored values of a 1000-seed `gain` run took 13,500 page faults, about 7 % of
//! the run's CPU time. On Linux a [`ZeroedBuffer`] of at least [`MAPPED_FROM_BYTES`] is an
//! anonymous mapping advised `MADV_HUGEPAGE`, which the kernel backs with 2 MiB pages when
//! transparent huge pages are enabled in `madvise` or `always` mode (27 faults for those
//! 55 MB). Elsewhere, for smaller buffers, or if the mapping fails, it is an ordinary `Vec`;
//! the contents are the same either way.

use std::fmt;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;

/// Buffers from this size on are mapped (Linux); smaller ones are not worth a huge page.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) const MAPPED_FROM_BYTES: usize = 2 << 20;

/// `len` zeroed values of `T` (see the module docs).
pub(crate) struct ZeroedBuffer<T: Pod> {
    storage: Storage<T>,
}

enum Storage<T> {
    Heap(Vec<T>),
    #[cfg(target_os = "linux")]
    Mapped {
        map: memmap2::MmapMut,
        len: usize,
    },
}

impl<T: Pod> ZeroedBuffer<T> {
    /// `len` zeros.
    pub fn new(len: usize) -> Self {
        #[cfg(target_os = "linux")]
        if let Some(map) = Self::huge_page_map(len) {
            return Self {
                storage: Storage::Mapped { map, len },
            };
        }
        Self {
            storage: Storage::Heap(vec![T::zeroed(); len]),
        }
    }

    /// An anonymous mapping of `len` values advised for huge pages, if it is large enough and
    /// the OS grants it. Anonymous mappings start zeroed (all-zero bytes are a valid `T`:
    /// `Pod`), and are page-aligned, which is more than any `T` needs.
    #[cfg(target_os = "linux")]
    fn huge_page_map(len: usize) -> Option<memmap2::MmapMut> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        if bytes < MAPPED_FROM_BYTES {
            return None;
        }
        let map = memmap2::MmapOptions::new().len(bytes).map_anon().ok()?;
        // Advice only: without transparent huge pages the mapping works with small pages.
        let _ = map.advise(memmap2::Advice::HugePage);
        Some(map)
    }
}

impl<T: Pod> Deref for ZeroedBuffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.storage {
            Storage::Heap(values) => values,
            #[cfg(target_os = "linux")]
            Storage::Mapped { map, len } => &bytemuck::cast_slice(&map[..])[..*len],
        }
    }
}

impl<T: Pod> DerefMut for ZeroedBuffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.storage {
            Storage::Heap(values) => values,
            #[cfg(target_os = "linux")]
            Storage::Mapped { map, len } => &mut bytemuck::cast_slice_mut(&mut map[..])[..*len],
        }
    }
}

impl<T: Pod> Clone for ZeroedBuffer<T> {
    fn clone(&self) -> Self {
        let mut copy = Self::new(self.len());
        copy.copy_from_slice(self);
        copy
    }
}

impl<T: Pod> fmt::Debug for ZeroedBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mapped = !matches!(self.storage, Storage::Heap(_));
        f.debug_struct("ZeroedBuffer")
            .field("len", &self.len())
            .field("mapped", &mapped)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_start_zeroed_and_hold_what_is_written() {
        for len in [0, 1, 1000, MAPPED_FROM_BYTES / 8 + 3] {
            let mut buffer = ZeroedBuffer::<f64>::new(len);
            assert_eq!(buffer.len(), len);
            assert!(buffer.iter().all(|&x| x == 0.0));
            for (i, x) in buffer.iter_mut().enumerate() {
                *x = i as f64;
            }
            let copy = buffer.clone();
            assert!(copy.iter().enumerate().all(|(i, &x)| x == i as f64));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn large_buffers_are_mapped_on_linux() {
        let large = ZeroedBuffer::<f64>::new(MAPPED_FROM_BYTES / 8);
        assert!(format!("{large:?}").contains("mapped: true"));
        let small = ZeroedBuffer::<u8>::new(MAPPED_FROM_BYTES - 1);
        assert!(format!("{small:?}").contains("mapped: false"));
    }
}
