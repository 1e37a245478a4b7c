//! The only `unsafe` code of embkit: software prefetch and non-temporal
//! (streaming) stores, where the portable code cannot express them.
//!
//! Each function here has a portable twin it must agree with bit for bit
//! (moving `f32`s changes no bit), tested on random inputs in this module's
//! tests, which CI also runs under miri. The x86-64 paths use SSE only,
//! which every x86-64 processor has, so nothing is chosen at run time:
//! 16-byte streaming stores are combined by the processor's write-combining
//! buffers into whole cache lines, which is what makes them fast.
#![allow(unsafe_code)]

/// Asks the processor to start loading `len` floats from `start` of
/// `values` into the cache, one request per 64-byte line (at most 8 lines).
/// Does nothing when the range is outside `values`, or off x86-64.
#[inline(always)]
pub(crate) fn prefetch(values: &[f32], start: usize, len: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        if start + len > values.len() {
            return;
        }
        let p = values[start..].as_ptr().cast::<i8>();
        let lines = (len * 4).div_ceil(64).min(8);
        for line in 0..lines {
            // SAFETY: a prefetch never faults and reads nothing the program
            // sees; the address is inside `values` (checked above), since
            // `line * 64 < len * 4`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(line * 64)) };
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = (values, start, len);
}

/// Runs `f`, compiled for AVX2 and FMA when the processor has them
/// (checked at run time, once per call), otherwise as it is.
///
/// `f` must be inlined into the trampoline for the wider instructions to
/// be used: pass a closure that calls `#[inline(always)]` code. The
/// results are the same bits either way: Rust never contracts `a * b + c`
/// into a fused multiply-add on its own, `mul_add` is always fused, and
/// vector and scalar instructions round alike.
#[inline(always)]
pub(crate) fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has AVX2 and FMA (checked just above),
        // the only precondition of a `target_feature` function.
        return unsafe { with_avx2_fma(f) };
    }
    f()
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Whether a [`StreamingWriter`] uses streaming stores for a destination
/// starting at `dst` holding rows of `dim` floats: on x86-64 when every
/// row starts on a 16-byte boundary.
pub(crate) fn can_stream(dst: &[f32], dim: usize) -> bool {
    cfg!(target_arch = "x86_64") && dim % 4 == 0 && (dst.as_ptr() as usize) % 16 == 0
}

/// Writes into `dst` with streaming stores, which bypass the cache: for
/// outputs far larger than the cache that are not read right away.
///
/// Streaming stores must be ordered by an `sfence` on the same thread
/// before anything else accesses the memory they wrote. The writer holds
/// `dst` borrowed until it is dropped, and fences when dropped (also when
/// unwinding), so safe code cannot read `dst` before the fence.
pub(crate) struct StreamingWriter<'a> {
    dst: &'a mut [f32],
}

impl<'a> StreamingWriter<'a> {
    /// A writer into `dst`.
    pub(crate) fn new(dst: &'a mut [f32]) -> Self {
        Self { dst }
    }

    /// Copies `src` to `dst[start..start + src.len()]`: with streaming
    /// stores on x86-64 when that range is 16-byte aligned and its length
    /// a multiple of 4, otherwise with `copy_from_slice`.
    ///
    /// # Panics
    ///
    /// If the range is not inside `dst`.
    #[inline(always)]
    pub(crate) fn write(&mut self, start: usize, src: &[f32]) {
        let dst = &mut self.dst[start..start + src.len()];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::_mm_loadu_ps;
            if src.len() % 4 == 0 && (dst.as_ptr() as usize) % 16 == 0 {
                let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
                let mut i = 0;
                while i < src.len() {
                    // SAFETY: `i + 4 <= len` for both slices (the length is
                    // a multiple of 4); the load is unaligned; the store's
                    // address is 16-byte aligned because `dst` is and `i` is
                    // a multiple of 4 floats; `dst` is borrowed mutably by
                    // this writer, whose drop runs the `sfence` the
                    // streaming store needs before any other access.
                    unsafe {
                        let v = _mm_loadu_ps(s.add(i));
                        #[cfg(not(miri))]
                        std::arch::x86_64::_mm_stream_ps(d.add(i), v);
                        // Miri cannot run `movntps` (inline assembly): an
                        // aligned 16-byte write, which has the same
                        // precondition, lets it check addresses and
                        // alignment.
                        #[cfg(miri)]
                        d.add(i).cast::<std::arch::x86_64::__m128>().write(v);
                    }
                    i += 4;
                }
                return;
            }
        }
        dst.copy_from_slice(src);
    }
}

impl Drop for StreamingWriter<'_> {
    fn drop(&mut self) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        // SAFETY: `sfence` has no operands and no precondition.
        unsafe {
            std::arch::x86_64::_mm_sfence()
        };
        // Miri has no `sfence`; in its memory model a sequentially
        // consistent fence orders the writes.
        #[cfg(miri)]
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn streaming_writes_equal_copy_from_slice_at_every_offset_and_length() {
        let mut rng = StdRng::seed_from_u64(1);
        let src: Vec<f32> = (0..300).map(|_| rng.random::<f32>() - 0.5).collect();
        for offset in 0..8 {
            for len in [0, 1, 3, 4, 8, 12, 64, 68, 257] {
                let mut dst = vec![f32::NAN; len + offset + 8];
                let mut expected = dst.clone();
                {
                    let mut writer = StreamingWriter::new(&mut dst);
                    writer.write(offset, &src[..len]);
                    writer.write(offset + len, &src[len..len + 8]);
                }
                expected[offset..offset + len + 8].copy_from_slice(&src[..len + 8]);
                assert_eq!(
                    dst.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "offset {offset}, len {len}"
                );
            }
        }
    }

    #[test]
    fn prefetch_accepts_any_range() {
        let values = vec![1.0_f32; 100];
        prefetch(&values, 0, 100);
        prefetch(&values, 90, 64);
        prefetch(&values, 1000, 1);
        prefetch(&[], 0, 0);
    }
}
