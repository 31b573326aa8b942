//! Where the texels of a matmul operand live in its texture. An operand that fits the
//! adapter's `max_texture_dimension_2d` is stored as it is; a taller one is folded: its rows
//! from [`TexelLayout::fold_rows`] on continue in the next block of `width` columns, so
//! qwen2.5-7b's 18944-row FFN weight (Bᵀ) becomes two 16384-row blocks side by side, and the
//! texture-fed kernels, the fast ones on lavapipe, still apply. The kernels map a logical
//! texel (x, y) with the WGSL function [`TexelLayout::wgsl`] renders: the identity, or a
//! shift, a mask and a multiply-add, the block height being a power of two.
//!
//! A wrapped layout ([`TexelLayout::wrapped`]) instead puts a power of two of consecutive
//! logical rows side by side in each texture row, so the texels stay in the operand's own
//! memory order: the decode kernels' KV caches, read a few consecutive keys at a time, ran
//! up to 1.6x faster wrapped than folded on lavapipe.

use super::PrepareError;
use crate::gpu::Gpu;

/// An operand of `width` x `height` texels (logical), as laid out in its texture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TexelLayout {
    /// Texels per logical row.
    pub width: u32,
    /// Logical rows.
    pub height: u32,
    /// Rows per block when folded (a power of two); `None` when the operand fits as it is.
    pub fold_rows: Option<u32>,
    /// Logical rows side by side in each texture row when wrapped (a power of two); 1
    /// otherwise.
    pub wrap: u32,
}

/// The side of a texture allocated for `side` texels: `side`, or, where that is a power of
/// two, the next side that is not (within `max`). llvmpipe compiles a kernel once per
/// pattern of which bound textures have power-of-two widths and heights (Mesa's
/// `lp_sampler_static_texture_state`), so one kernel at shapes that differ only in that
/// compiled again: with Mesa's cache warm from a 256³ matmul, 512³ loaded its kernel from
/// the cache while an aligned 96x64x128 compiled it anew. Never a power of two, every shape
/// shares one compiled kernel. The kernels address logical texels, so the extra texels
/// are never read.
pub fn allocated(side: u32, max: u32) -> u32 {
    if !side.is_power_of_two() {
        return side;
    }
    let padded = if side == 1 { 3 } else { side + 1 };
    if padded <= max {
        padded
    } else {
        side
    }
}

impl TexelLayout {
    /// The layout of `label` (named in errors) in textures of at most `max` texels a side.
    pub fn new(label: &str, width: u32, height: u32, max: u32) -> Result<Self, PrepareError> {
        let too_big = || {
            PrepareError::Unsupported(format!(
                "{label} needs a {width}x{height} texture, over the adapter's max texture dimension {max} even folded into blocks of rows side by side"
            ))
        };
        if width > max || max == 0 {
            return Err(too_big());
        }
        if height <= max {
            return Ok(TexelLayout {
                width,
                height,
                fold_rows: None,
                wrap: 1,
            });
        }
        // The largest power of two the adapter allows, so the shader splits rows with a
        // shift and a mask.
        let rows = 1u32 << (31 - max.leading_zeros());
        let layout = TexelLayout {
            width,
            height,
            fold_rows: Some(rows),
            wrap: 1,
        };
        if u64::from(layout.blocks()) * u64::from(width) > u64::from(max) {
            return Err(too_big());
        }
        Ok(layout)
    }

    /// As [`TexelLayout::new`], but an operand taller than `max` is wrapped: logical row y
    /// is texture row y / WRAP, columns (y % WRAP)·width onwards, WRAP the least power of
    /// two that makes the rows fit. Texture memory then holds the operand in its own order.
    pub fn wrapped(label: &str, width: u32, height: u32, max: u32) -> Result<Self, PrepareError> {
        if height <= max || max == 0 {
            // Plain, or the reason it does not fit.
            return Self::new(label, width, height, max);
        }
        let wrap = height.div_ceil(max).next_power_of_two();
        if u64::from(width) * u64::from(wrap) > u64::from(max) {
            return Err(PrepareError::Unsupported(format!(
                "{label} needs a {width}x{height} texture, over the adapter's max texture dimension {max} even with {wrap} rows side by side"
            )));
        }
        Ok(TexelLayout {
            width,
            height,
            fold_rows: None,
            wrap,
        })
    }

    /// Blocks of rows side by side: 1 unless folded.
    pub fn blocks(&self) -> u32 {
        self.fold_rows.map_or(1, |r| self.height.div_ceil(r))
    }

    /// The texture's size, width by height in texels.
    pub fn size(&self) -> (u32, u32) {
        match self.fold_rows {
            None => (self.width * self.wrap, self.height.div_ceil(self.wrap)),
            Some(rows) => (self.width * self.blocks(), rows),
        }
    }

    /// The size of one upload of a plain or folded layout ([`TexelLayout::write`]): `width`
    /// by the rows of a block.
    pub fn block(&self) -> (u32, u32) {
        (
            self.width,
            self.fold_rows.unwrap_or(self.height).min(self.height),
        )
    }

    pub fn folded(&self) -> bool {
        self.fold_rows.is_some()
    }

    /// WGSL `fn {name}(x: u32, y: u32) -> vec2<u32>`: the texture coordinate of logical
    /// texel (x, y).
    pub fn wgsl(&self, name: &str) -> String {
        match self.fold_rows {
            None if self.wrap > 1 => format!(
                "// Wrapped: {wrap} rows side by side in each texture row, in memory order.\nfn {name}(x: u32, y: u32) -> vec2<u32> {{\n    return vec2<u32>(x + (y & {mask}u) * {w}u, y >> {shift}u);\n}}",
                wrap = self.wrap,
                mask = self.wrap - 1,
                w = self.width,
                shift = self.wrap.trailing_zeros(),
            ),
            None => format!("fn {name}(x: u32, y: u32) -> vec2<u32> {{\n    return vec2<u32>(x, y);\n}}"),
            Some(rows) => format!(
                "// Folded: row y is row y % {rows} of block y / {rows}, blocks {w} texels apart.\nfn {name}(x: u32, y: u32) -> vec2<u32> {{\n    return vec2<u32>(x + (y >> {shift}u) * {w}u, y & {mask}u);\n}}",
                shift = rows.trailing_zeros(),
                mask = rows - 1,
                w = self.width,
            ),
        }
    }

    /// A 2D texture of at least this layout's size in `format`, for `usage` (sides that
    /// are powers of two get one or two texels more: [`allocated`]).
    pub fn texture(
        &self,
        gpu: &Gpu,
        label: &str,
        format: wgpu::TextureFormat,
        usage: wgpu::TextureUsages,
    ) -> wgpu::Texture {
        let max = gpu.limits().max_texture_dimension_2d;
        let (width, height) = self.size();
        let (width, height) = (allocated(width, max), allocated(height, max));
        gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage,
            view_formats: &[],
        })
    }

    /// Upload `bytes`, the logical rows one after another (`texel_bytes` per texel), into
    /// `texture`: one write per block of rows, or, wrapped, one for the whole texture rows
    /// and one for the logical rows left over in the last.
    pub fn write(&self, gpu: &Gpu, texture: &wgpu::Texture, bytes: &[u8], texel_bytes: u32) {
        let row_bytes = (self.width * texel_bytes) as usize;
        // `rows` texture rows of `width` texels at (x, y), from `data`.
        let put = |x: u32, y: u32, width: u32, rows: u32, data: &[u8]| {
            gpu.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d { x, y, z: 0 },
                    aspect: wgpu::TextureAspect::All,
                },
                data,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(width * texel_bytes),
                    rows_per_image: Some(rows),
                },
                wgpu::Extent3d {
                    width,
                    height: rows,
                    depth_or_array_layers: 1,
                },
            );
        };
        if self.wrap > 1 {
            let whole = self.height / self.wrap;
            let rest = self.height % self.wrap;
            let split = whole as usize * self.wrap as usize * row_bytes;
            if whole > 0 {
                put(0, 0, self.width * self.wrap, whole, &bytes[..split]);
            }
            if rest > 0 {
                let end = split + rest as usize * row_bytes;
                put(0, whole, self.width * rest, 1, &bytes[split..end]);
            }
            return;
        }
        let (_, block_rows) = self.block();
        for block in 0..self.blocks() {
            let first = block * block_rows;
            let rows = block_rows.min(self.height - first);
            let start = first as usize * row_bytes;
            let end = start + rows as usize * row_bytes;
            put(block * self.width, 0, self.width, rows, &bytes[start..end]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the WGSL function sends (x, y), evaluated the way the shader does.
    fn place(l: &TexelLayout, x: u32, y: u32) -> (u32, u32) {
        match l.fold_rows {
            None => (x + (y % l.wrap) * l.width, y / l.wrap),
            Some(r) => (x + (y >> r.trailing_zeros()) * l.width, y & (r - 1)),
        }
    }

    #[test]
    fn allocated_sides_are_never_powers_of_two_within_the_limit() {
        assert_eq!(allocated(96, 16384), 96);
        assert_eq!(allocated(256, 16384), 257);
        assert_eq!(allocated(2, 16384), 3);
        assert_eq!(allocated(1, 16384), 3);
        // At the limit a power of two stays: the texture could not be bigger.
        assert_eq!(allocated(16384, 16384), 16384);
        for side in 1..=4096 {
            let a = allocated(side, 16384);
            assert!(
                a >= side && a <= side + 2 && !a.is_power_of_two(),
                "{side} -> {a}"
            );
        }
    }

    #[test]
    fn an_operand_that_fits_is_not_folded() {
        let l = TexelLayout::new("B", 896, 16384, 16384).unwrap();
        assert_eq!((l.fold_rows, l.blocks(), l.size()), (None, 1, (896, 16384)));
        assert!(l.wgsl("b_texel").contains("return vec2<u32>(x, y);"));
    }

    #[test]
    fn a_tall_operand_folds_into_blocks_that_cover_every_texel_once() {
        // qwen2.5-7b's gate/up weight, Bᵀ [18944, 3584]: 896 texels by 18944 rows.
        let l = TexelLayout::new("B", 896, 18944, 16384).unwrap();
        assert_eq!(
            (l.fold_rows, l.blocks(), l.size()),
            (Some(16384), 2, (1792, 16384))
        );
        assert!(l.wgsl("b_texel").contains("(y >> 14u) * 896u, y & 16383u"));
        // A small fold, every texel: distinct places inside the texture.
        let l = TexelLayout::new("A", 2, 21, 8).unwrap();
        assert_eq!((l.blocks(), l.size()), (3, (6, 8)));
        let mut seen = std::collections::HashSet::new();
        for y in 0..21 {
            for x in 0..2 {
                let (px, py) = place(&l, x, y);
                assert!(px < 6 && py < 8, "({x}, {y}) -> ({px}, {py})");
                assert!(seen.insert((px, py)), "({x}, {y}) lands on a used texel");
            }
        }
    }

    #[test]
    fn a_wrapped_operand_keeps_memory_order_and_covers_every_texel_once() {
        // Llama-3-8B's KV cache at skv = 8192, f32: 65536 keys of 32 texels, 4 a row.
        let l = TexelLayout::wrapped("K", 32, 65536, 16384).unwrap();
        assert_eq!((l.wrap, l.fold_rows, l.size()), (4, None, (128, 16384)));
        assert!(
            l.wgsl("t").contains("x + (y & 3u) * 32u, y >> 2u"),
            "{}",
            l.wgsl("t")
        );
        // A partly filled last row; every texel at its place in row-major memory order.
        for (width, height, max, wrap, size) in [(3, 21, 16, 2, (6, 11)), (2, 21, 8, 4, (8, 6))] {
            let l = TexelLayout::wrapped("K", width, height, max).unwrap();
            assert_eq!((l.wrap, l.size()), (wrap, size));
            for y in 0..height {
                for x in 0..width {
                    let (px, py) = place(&l, x, y);
                    assert!(px < size.0 && py < size.1, "({x}, {y}) -> ({px}, {py})");
                    let at = py * size.0 + px;
                    assert_eq!(at, y * width + x, "({x}, {y}) out of memory order");
                }
            }
        }
        // One that fits is left as it is; one too wide even wrapped is refused, and why.
        assert_eq!(TexelLayout::wrapped("K", 3, 8, 8).unwrap().wrap, 1);
        let Err(PrepareError::Unsupported(why)) = TexelLayout::wrapped("K", 5, 21, 8) else {
            panic!("5 texels x 4 rows do not fit 8");
        };
        assert!(why.contains("4 rows side by side"), "{why}");
    }

    #[test]
    fn a_non_power_of_two_limit_folds_at_the_power_of_two_below_it() {
        let l = TexelLayout::new("A", 4, 13000, 12000).unwrap();
        assert_eq!(
            (l.fold_rows, l.blocks(), l.size()),
            (Some(8192), 2, (8, 8192))
        );
    }

    #[test]
    fn operands_too_wide_even_folded_are_refused_with_the_reason() {
        for (w, h) in [(16385, 1), (9000, 16385), (1, u32::MAX)] {
            let Err(PrepareError::Unsupported(why)) = TexelLayout::new("B", w, h, 16384) else {
                panic!("{w}x{h} should not fit");
            };
            assert!(why.contains(&format!("B needs a {w}x{h} texture")), "{why}");
        }
    }
}
