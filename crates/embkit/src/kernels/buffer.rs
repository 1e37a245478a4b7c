//! [`TableBuffer`]: the memory of an embedding table.
//!
//! A table is read a random row at a time, so two things decide how fast:
//! how many cache lines a row touches, and how many TLB misses the reads
//! take. `Vec<f32>`'s allocation starts 16 bytes into a page on glibc, so
//! a 256-byte row spans five cache lines instead of four; and with 4 KiB
//! pages a 256 MB table has 65,536 pages, far more than the TLB holds.
//! This buffer starts every table on a cache line (rows whose byte length
//! is a multiple of 64 then sit on whole lines) and maps a large table
//! with the transparent-huge-page advice (`MADV_HUGEPAGE`, Linux), which
//! makes the pages 2 MiB where the kernel allows it. No `unsafe`: the map
//! is memmap2's anonymous map, viewed as floats by bytemuck's checked cast.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// Tables of at least this many bytes are mapped with the huge-page
/// advice; smaller ones live on the heap.
pub(crate) const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// The alignment of a table's first float, in floats (64 bytes).
const LINE_FLOATS: usize = 16;

/// A zero-initialised, fixed-length run of floats that starts on a
/// 64-byte boundary; large ones are mapped with the huge-page advice.
/// Dereferences to `[f32]`.
pub(crate) struct TableBuffer {
    storage: Storage,
    len: usize,
}

enum Storage {
    /// `vec[start..start + len]`, with `start` chosen so the first float
    /// is on a cache line.
    Heap { vec: Vec<f32>, start: usize },
    /// An anonymous map (page-aligned), `len * 4` bytes or more.
    Mapped(memmap2::MmapMut),
}

impl TableBuffer {
    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        let bytes = len.saturating_mul(std::mem::size_of::<f32>());
        if bytes >= HUGE_PAGE_MIN_BYTES && !cfg!(miri) {
            if let Ok(map) = memmap2::MmapOptions::new().len(bytes).map_anon() {
                // The advice only changes how pages are backed; a kernel
                // without transparent huge pages refuses it, and the map
                // works the same with small pages.
                #[cfg(target_os = "linux")]
                let _ = map.advise(memmap2::Advice::HugePage);
                return Self { storage: Storage::Mapped(map), len };
            }
        }
        let vec = vec![0.0f32; len + LINE_FLOATS];
        // `vec`'s pointer is 4-byte aligned; floats to the next 64 bytes.
        let past = (vec.as_ptr() as usize % (LINE_FLOATS * 4)) / 4;
        let start = (LINE_FLOATS - past) % LINE_FLOATS;
        Self { storage: Storage::Heap { vec, start }, len }
    }

    /// `len` copies of `value`.
    pub(crate) fn filled(len: usize, value: f32) -> Self {
        let mut buffer = Self::zeroed(len);
        if value != 0.0 || value.is_sign_negative() {
            buffer.fill(value);
        }
        buffer
    }

    /// A copy of `values`.
    pub(crate) fn from_slice(values: &[f32]) -> Self {
        let mut buffer = Self::zeroed(values.len());
        buffer.copy_from_slice(values);
        buffer
    }

    /// The first `len` values of `values` (zeros after them if it has
    /// fewer).
    pub(crate) fn from_values(values: impl IntoIterator<Item = f32>, len: usize) -> Self {
        let mut buffer = Self::zeroed(len);
        for (out, x) in buffer.iter_mut().zip(values) {
            *out = x;
        }
        buffer
    }

    /// Whether the table is mapped with the huge-page advice.
    #[cfg(test)]
    fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }
}

impl Deref for TableBuffer {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.storage {
            Storage::Heap { vec, start } => &vec[*start..*start + self.len],
            Storage::Mapped(map) => &bytemuck::cast_slice(&map[..])[..self.len],
        }
    }
}

impl DerefMut for TableBuffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        match &mut self.storage {
            Storage::Heap { vec, start } => &mut vec[*start..*start + self.len],
            Storage::Mapped(map) => &mut bytemuck::cast_slice_mut(&mut map[..])[..self.len],
        }
    }
}

impl From<Vec<f32>> for TableBuffer {
    fn from(values: Vec<f32>) -> Self {
        Self::from_slice(&values)
    }
}

impl Clone for TableBuffer {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl PartialEq for TableBuffer {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for TableBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_start_on_a_cache_line_and_hold_their_values() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let values: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
            let mut buffer = TableBuffer::from_slice(&values);
            assert_eq!(buffer.len(), len);
            assert_eq!(&buffer[..], &values[..]);
            assert_eq!(buffer.as_ptr() as usize % 64, 0, "len {len}");
            assert!(!buffer.is_mapped());
            let copy = buffer.clone();
            assert_eq!(copy, buffer);
            assert_eq!(copy.as_ptr() as usize % 64, 0);
            if len > 0 {
                buffer[len - 1] = -1.0;
                assert_ne!(copy, buffer);
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // 4 MiB under miri takes minutes
    fn large_tables_are_mapped_zeroed_and_aligned() {
        let len = HUGE_PAGE_MIN_BYTES / 4 + 3;
        let mut buffer = TableBuffer::zeroed(len);
        assert!(buffer.is_mapped());
        assert_eq!(buffer.len(), len);
        assert!(buffer.iter().all(|&x| x == 0.0));
        assert_eq!(buffer.as_ptr() as usize % 4096, 0);
        buffer[len - 1] = 2.5;
        buffer[0] = 1.5;
        let copy = buffer.clone();
        assert!(copy.is_mapped());
        assert_eq!(copy, buffer);
        assert_eq!((copy[0], copy[len - 1]), (1.5, 2.5));
        assert_eq!(format!("{:?}", TableBuffer::from(vec![1.0, 2.0])), "[1.0, 2.0]");
        assert_eq!(&TableBuffer::filled(3, 0.1)[..], &[0.1, 0.1, 0.1]);
        assert_eq!(&TableBuffer::from_values([1.0, 2.0, 3.0], 2)[..], &[1.0, 2.0]);
        assert!(TableBuffer::filled(len, -0.0).iter().all(|x| x.is_sign_negative()));
    }
}
