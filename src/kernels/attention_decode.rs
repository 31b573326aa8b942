//! The decode attention kernels (Sq = 1) and the host side of each. Lavapipe's designs run
//! one generated step (scores one key per SIMD lane, FlashAttention-2's online softmax for
//! the rep query heads of a KV head; P·V per lane over its own keys, the lanes combined by
//! subgroup reductions at the end, or with the head dim split across the lanes:
//! `split_d_pv`) fed two ways:
//! - `decode_ubo_*`: K and V through 64 KiB uniform windows, several per dispatch
//!   (`kernels/attention_decode_ubo.wgsl`);
//! - `decode_stex_*`: Q, K and V in rgba32uint storage textures, one dispatch for every head
//!   and chunk (`kernels/attention_decode_texture.wgsl`).
//!
//! The GPU design, `decode_coop_*`, puts a whole workgroup on one query head's chunk, K and V
//! from storage buffers (`kernels/attention_decode_coop.wgsl`).
//!
//! All write per-chunk partial results that attention.rs's merge pass combines. The
//! variants themselves ([`AttentionVariant::Decode`], [`AttentionVariant::DecodeTexture`],
//! [`AttentionVariant::DecodeCoop`]) live with the others in attention.rs.

use std::fmt::Write as _;

use super::attention::{
    bind_entries, grid_1d, kv_buffers, kv_copies, merge_source, range, scratch, tree, whole,
    AttentionInputs, AttentionVariant, FlashParams, FLASH_PARAMS, IND, LOG2_E,
};
use super::texel_layout::TexelLayout;
use super::{
    bind, bind_resources, check_buffer, check_workgroups, compile, enable_line, output_buffer,
    render, require_subgroups, slot_switch, storage_buffer, uniform_buffer, uniform_readable,
    unpack_halves, Dispatch, HostTensor, PrepareError, Program,
};
use crate::gpu::Gpu;
use crate::shape::{AttentionShape, DType};

const DECODE_UBO: &str = include_str!("../../kernels/attention_decode_ubo.wgsl");
const DECODE_TEXTURE: &str = include_str!("../../kernels/attention_decode_texture.wgsl");
const DECODE_COOP: &str = include_str!("../../kernels/attention_decode_coop.wgsl");

/// The generated parts of a decode kernel (uniform windows or textures): pre-scaled q
/// (`LOAD_Q`), the per-lane online-softmax state (`INIT`), one step over 8·TK keys (`STEP`,
/// K and V named `@K` and `@V`) and the subgroup combination of the lanes (`REDUCE`).
struct DecodeBody {
    load_q: String,
    init: String,
    step: String,
    reduce: String,
}

/// A WGSL expression built from two others (a unit index and a row).
type Expr2<'a> = &'a dyn Fn(&str, &str) -> String;

/// Where a decode kernel reads Q, K and V, as WGSL expressions of 16-byte units (a
/// `vec4<f32>` in f32 windows, a `vec4<u32>` otherwise): `q(h, u)` is unit u of the KV head's
/// query head h, `kv(buffer, t, u)` unit u of the step's key t in K or V (`@K`, `@V`), whose
/// row `key_row(key)` names for an i32 key expression (clamped to the chunk); `raw` says f32
/// units come as u32 bit
/// patterns.
struct DecodeSource<'a> {
    q: &'a dyn Fn(u32, u32) -> String,
    kv: &'a dyn Fn(&str, u32, u32) -> String,
    key_row: &'a dyn Fn(&str) -> String,
    raw: bool,
    /// P·V with the head dim split across the lanes (see [`split_d_pv`]): `v(unit, row)`,
    /// V's unit at a lane-dependent index and a lane-uniform row. `None`: each lane
    /// accumulates its own keys' whole rows.
    v_split: Option<Expr2<'a>>,
}

/// The decode kernel's body for `rep` query heads per KV head, head dim `d` and `tk` keys
/// per lane per step, reading through `src`.
fn decode_body(d: u32, dtype: DType, rep: u32, tk: u32, src: &DecodeSource) -> DecodeBody {
    let d4 = d / 4;
    let f16 = dtype == DType::F16;
    let group = if f16 { 2 } else { 1 };
    // Statements loading the 16-byte `unit` into `{name}0` (and `{name}1`: f16).
    let load = |unit: String, name: &str| -> String {
        if f16 {
            format!("let {name}u = {unit}; {}", unpack_halves(name))
        } else if src.raw {
            format!("let {name}0 = bitcast<vec4<f32>>({unit});")
        } else {
            format!("let {name}0 = {unit};")
        }
    };
    let mut load_q = String::new();
    let mut init = String::new();
    for h in 0..rep {
        for c in 0..d4 {
            let _ = writeln!(load_q, "    var q{h}_{c}: vec4<f32>;");
        }
    }
    for h in 0..rep {
        for c0 in (0..d4).step_by(group as usize) {
            let _ = writeln!(load_q, "    {{ {} ", load((src.q)(h, c0 / group), "x"));
            for gi in 0..group {
                let _ = writeln!(load_q, "        q{h}_{} = x{gi} * p.scale_log2e;", c0 + gi);
            }
            let _ = writeln!(load_q, "    }}");
        }
        let _ = writeln!(init, "    var m{h} = NEG;");
        let _ = writeln!(init, "    var l{h} = 0.0;");
    }
    let mut step = String::new();
    for t in 0..tk {
        let _ = writeln!(step, "{IND}let key{t} = t0 + {} + i32(li);", 8 * t);
        let _ = writeln!(step, "{IND}let msk{t} = key{t} >= see_end;");
        // Masked keys read the chunk's last key (in bounds) and add 0.
        let _ = writeln!(
            step,
            "{IND}let kb{t} = {};",
            (src.key_row)(&format!("key{t}"))
        );
        for h in 0..rep {
            let _ = writeln!(step, "{IND}var s{h}_{t} = 0.0;");
        }
    }
    for c0 in (0..d4).step_by(group as usize) {
        for t in 0..tk {
            let _ = writeln!(step, "{IND}{{ {}", load((src.kv)("@K", t, c0 / group), "x"));
            for gi in 0..group {
                let c = c0 + gi;
                for h in 0..rep {
                    let _ = writeln!(
                        step,
                        "{IND}    s{h}_{t} = fma(q{h}_{c}.w, x{gi}.w, fma(q{h}_{c}.z, x{gi}.z, fma(q{h}_{c}.y, x{gi}.y, fma(q{h}_{c}.x, x{gi}.x, s{h}_{t}))));"
                    );
                }
            }
            let _ = writeln!(step, "{IND}}}");
        }
    }
    if let Some(v_split) = src.v_split {
        assert_eq!(tk, 1, "split-d P·V takes one key per lane");
        let (pv_init, pv_step, reduce) = split_d_pv(d, group, rep, &load, src.key_row, v_split);
        init.push_str(&pv_init);
        step.push_str(&pv_step);
        return DecodeBody {
            load_q,
            init,
            step,
            reduce,
        };
    }
    for h in 0..rep {
        for c in 0..d4 {
            let _ = writeln!(init, "    var o{h}_{c} = vec4<f32>(0.0);");
        }
    }
    for h in 0..rep {
        let names: Vec<String> = (0..tk).map(|t| format!("s{h}_{t}")).collect();
        for t in 0..tk {
            let _ = writeln!(step, "{IND}s{h}_{t} = select(s{h}_{t}, NEG, msk{t});");
        }
        let _ = writeln!(step, "{IND}let mn{h} = max(m{h}, {});", tree(&names, "max"));
        let _ = writeln!(step, "{IND}let alpha{h} = exp2(m{h} - mn{h});");
        for t in 0..tk {
            let _ = writeln!(
                step,
                "{IND}let p{h}_{t} = select(exp2(s{h}_{t} - mn{h}), 0.0, msk{t});"
            );
        }
        let ps: Vec<String> = (0..tk).map(|t| format!("p{h}_{t}")).collect();
        let _ = writeln!(step, "{IND}l{h} = fma(l{h}, alpha{h}, {});", tree(&ps, "+"));
        let _ = writeln!(step, "{IND}m{h} = mn{h};");
    }
    for c0 in (0..d4).step_by(group as usize) {
        for gi in 0..group {
            for h in 0..rep {
                let c = c0 + gi;
                let _ = writeln!(step, "{IND}o{h}_{c} = o{h}_{c} * alpha{h};");
            }
        }
        for t in 0..tk {
            let _ = writeln!(step, "{IND}{{ {}", load((src.kv)("@V", t, c0 / group), "y"));
            for gi in 0..group {
                let c = c0 + gi;
                for h in 0..rep {
                    let _ = writeln!(
                        step,
                        "{IND}    o{h}_{c} = fma(vec4<f32>(p{h}_{t}), y{gi}, o{h}_{c});"
                    );
                }
            }
            let _ = writeln!(step, "{IND}}}");
        }
    }
    let mut reduce = String::new();
    for h in 0..rep {
        let _ = writeln!(reduce, "    {{");
        let _ = writeln!(reduce, "        let mx = subgroupMax(m{h});");
        // A lane that saw no key has m = NEG: its weight is 0 (or 1 with l = 0, o = 0).
        let _ = writeln!(reduce, "        let sc = exp2(m{h} - mx);");
        let _ = writeln!(reduce, "        let lt = subgroupAdd(l{h} * sc);");
        let _ = writeln!(
            reduce,
            "        let pb = ((head.x * p.hq + head.y * p.rep + {h}u) * p.sq) * p.nsplit + split0 + sub;"
        );
        for c in 0..d4 {
            let _ = writeln!(reduce, "        let o{c} = subgroupAdd(o{h}_{c} * sc);");
        }
        let _ = writeln!(reduce, "        if (li == 0u) {{");
        for c in 0..d4 {
            let _ = writeln!(reduce, "            part_o[pb * D4 + {c}u] = o{c};");
        }
        let _ = writeln!(reduce, "            part_ml[pb] = vec2<f32>(mx, lt);");
        let _ = writeln!(reduce, "        }}");
        let _ = writeln!(reduce, "    }}");
    }
    DecodeBody {
        load_q,
        init,
        step,
        reduce,
    }
}

/// The softmax update, P·V and reduction of a step whose scores `s{h}_0` (one key per lane)
/// are computed, with the head dim split across the lanes: the running max is shared by the
/// 8 lanes (one `subgroupMax` per head and step), so o is rescaled once per 8 keys, and lane
/// l accumulates only V units l, l + 8, ... of every key, each key's weight handed over by
/// `subgroupBroadcast`. Per lane that keeps rep·ceil(units/8) accumulators instead of
/// rep·D/4, and each lane writes its own units of the chunk's output. Returns the o
/// declarations, the step's rest and the reduction.
fn split_d_pv(
    d: u32,
    group: u32,
    rep: u32,
    load: &dyn Fn(String, &str) -> String,
    key_row: &dyn Fn(&str) -> String,
    v_at: &dyn Fn(&str, &str) -> String,
) -> (String, String, String) {
    let units = d / 4 / group;
    let per_lane = units.div_ceil(8);
    let mut init = String::new();
    for j in 0..per_lane {
        // Past the row (d = 80, 96): clamped on load, skipped on store.
        let _ = writeln!(
            init,
            "    let vu{j} = min(li + {}u, {}u);",
            8 * j,
            units - 1
        );
    }
    for h in 0..rep {
        for c in 0..per_lane * group {
            let _ = writeln!(init, "    var o{h}_{c} = vec4<f32>(0.0);");
        }
    }
    let mut step = String::new();
    for h in 0..rep {
        let _ = writeln!(step, "{IND}s{h}_0 = select(s{h}_0, NEG, msk0);");
        let _ = writeln!(step, "{IND}let mn{h} = max(m{h}, subgroupMax(s{h}_0));");
        let _ = writeln!(step, "{IND}let alpha{h} = exp2(m{h} - mn{h});");
        let _ = writeln!(
            step,
            "{IND}let p{h} = select(exp2(s{h}_0 - mn{h}), 0.0, msk0);"
        );
        let _ = writeln!(step, "{IND}l{h} = fma(l{h}, alpha{h}, p{h});");
        let _ = writeln!(step, "{IND}m{h} = mn{h};");
        for c in 0..per_lane * group {
            let _ = writeln!(step, "{IND}o{h}_{c} = o{h}_{c} * alpha{h};");
        }
    }
    for t in 0..8 {
        // Key t of the step (masked keys have weight 0; their row is clamped).
        let _ = writeln!(step, "{IND}{{");
        let _ = writeln!(step, "{IND}    let vb = {};", key_row(&format!("t0 + {t}")));
        for h in 0..rep {
            let _ = writeln!(
                step,
                "{IND}    let w{h} = vec4<f32>(subgroupBroadcast(p{h}, {t}u));"
            );
        }
        for j in 0..per_lane {
            let _ = writeln!(
                step,
                "{IND}    {{ {}",
                load(v_at(&format!("vu{j}"), "vb"), "y")
            );
            for gi in 0..group {
                for h in 0..rep {
                    let c = j * group + gi;
                    let _ = writeln!(step, "{IND}        o{h}_{c} = fma(w{h}, y{gi}, o{h}_{c});");
                }
            }
            let _ = writeln!(step, "{IND}    }}");
        }
        let _ = writeln!(step, "{IND}}}");
    }
    let mut reduce = String::new();
    for h in 0..rep {
        let _ = writeln!(reduce, "    {{");
        let _ = writeln!(reduce, "        let lt = subgroupAdd(l{h});");
        let _ = writeln!(
            reduce,
            "        let pb = ((head.x * p.hq + head.y * p.rep + {h}u) * p.sq) * p.nsplit + split0 + sub;"
        );
        for j in 0..per_lane {
            let guard = 8 * (j + 1) > units;
            let ind = if guard { "            " } else { "        " };
            if guard {
                let _ = writeln!(reduce, "        if (li + {}u < {units}u) {{", 8 * j);
            }
            for gi in 0..group {
                let _ = writeln!(
                    reduce,
                    "{ind}part_o[pb * D4 + (li + {}u) * {group}u + {gi}u] = o{h}_{};",
                    8 * j,
                    j * group + gi
                );
            }
            if guard {
                let _ = writeln!(reduce, "        }}");
            }
        }
        let _ = writeln!(reduce, "        if (li == 0u) {{");
        let _ = writeln!(reduce, "            part_ml[pb] = vec2<f32>(m{h}, lt);");
        let _ = writeln!(reduce, "        }}");
        let _ = writeln!(reduce, "    }}");
    }
    (init, step, reduce)
}

/// The WGSL of the decode kernel for `rep` query heads per KV head, head dim `d`, `tk` keys
/// per lane per step, uniform windows of `q_vec4s` (Q) and `kv_vec4s` (K, V) vec4s, and
/// `nw` K/V window pairs per dispatch.
pub fn decode_source(
    d: u32,
    dtype: DType,
    rep: u32,
    tk: u32,
    q_vec4s: u32,
    kv_vec4s: u32,
    nw: u32,
) -> String {
    let f16 = dtype == DType::F16;
    let row = if f16 { d / 8 } else { d / 4 };
    let q = |h: u32, u: u32| format!("qw[head.z + {}u]", h * row + u);
    let kv = |buf: &str, t: u32, u: u32| format!("{buf}[kb{t} + {u}u]");
    let key_row = |key: &str| format!("kv_off + u32(min({key}, k_end - 1) - i32(k0)) * {row}u");
    let body = decode_body(
        d,
        dtype,
        rep,
        tk,
        &DecodeSource {
            q: &q,
            kv: &kv,
            key_row: &key_row,
            raw: false,
            v_split: None,
        },
    );
    let kw = if f16 { "u32" } else { "f32" };
    let mut bindings = String::new();
    for i in 0..nw {
        for (j, name) in ["kw", "vw"].iter().enumerate() {
            let _ = writeln!(
                bindings,
                "@group(0) @binding({}) var<uniform> {name}{i}: array<vec4<{kw}>, {kv_vec4s}>;",
                3 + 2 * i + j as u32
            );
        }
    }
    let windows = slot_switch("wid.y", nw, |i| {
        let body = body
            .step
            .replace("@K", &format!("kw{i}"))
            .replace("@V", &format!("vw{i}"));
        format!(
            "            for (var t0 = k_begin; t0 < see_end; t0 += i32(8u * TK)) {{\n{}\n            }}",
            body.trim_end()
        )
    });
    for (j, (name, ty)) in [("part_o", "vec4<f32>"), ("part_ml", "vec2<f32>")]
        .into_iter()
        .enumerate()
    {
        let _ = writeln!(
            bindings,
            "@group(0) @binding({}) var<storage, read_write> {name}: array<{ty}>;",
            3 + 2 * nw + j as u32
        );
    }
    render(
        DECODE_UBO,
        &[
            ("PARAMS", FLASH_PARAMS.into()),
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("KW", kw.into()),
            ("QV", q_vec4s.to_string()),
            ("NW", nw.to_string()),
            ("D4", (d / 4).to_string()),
            ("TK", tk.to_string()),
            ("KV_BINDINGS", bindings.trim_end().to_string()),
            ("LOAD_Q", body.load_q.trim_end().to_string()),
            ("INIT", body.init.trim_end().to_string()),
            ("WINDOWS", windows),
            ("REDUCE", body.reduce.trim_end().to_string()),
        ],
    )
}

/// The WGSL of the texture-fed decode kernel for `rep` query heads per KV head, head dim
/// `d` and `tk` keys per lane per step, K and V laid out as `layout`.
pub fn decode_texture_source(
    d: u32,
    dtype: DType,
    rep: u32,
    tk: u32,
    split_d: bool,
    q_layout: &TexelLayout,
    layout: &TexelLayout,
) -> String {
    let q = |h: u32, u: u32| format!("textureLoad(q_tex, q_texel({u}u, qr + {h}u))");
    let kv = |buf: &str, t: u32, u: u32| format!("textureLoad({buf}, kv_texel({u}u, kb{t}))");
    let key_row = |key: &str| format!("row0 + u32(min({key}, k_end - 1))");
    let v_split = |unit: &str, row: &str| format!("textureLoad(v_tex, kv_texel({unit}, {row}))");
    let body = decode_body(
        d,
        dtype,
        rep,
        tk,
        &DecodeSource {
            q: &q,
            kv: &kv,
            key_row: &key_row,
            raw: true,
            v_split: split_d.then_some(&v_split as Expr2),
        },
    );
    render(
        DECODE_TEXTURE,
        &[
            ("PARAMS", FLASH_PARAMS.into()),
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("D4", (d / 4).to_string()),
            ("TK", tk.to_string()),
            ("Q_TEXEL", q_layout.wgsl("q_texel")),
            ("KV_TEXEL", layout.wgsl("kv_texel")),
            ("LOAD_Q", body.load_q.trim_end().to_string()),
            ("INIT", body.init.trim_end().to_string()),
            (
                "STEP",
                body.step
                    .replace("@K", "k_tex")
                    .replace("@V", "v_tex")
                    .trim_end()
                    .to_string(),
            ),
            ("REDUCE", body.reduce.trim_end().to_string()),
        ],
    )
}

/// The most query heads per KV head times head dim the decode kernel unrolls (private
/// state per lane: q and o, 2·rep·d floats).
pub const DECODE_MAX_REP_D: u32 = 1024;

/// The most K/V window pairs one decode dispatch binds (lavapipe allows 6: 15 uniform
/// bindings per stage).
pub const DECODE_MAX_WINDOWS: u32 = 6;

/// The most rep·d·NW the decode kernel unrolls (each of the NW window slots repeats the
/// step, whose size grows with rep·d). GQA at d = 128 (rep·d = 512) with NW = 6 took 45 s to
/// compile on lavapipe with an empty Mesa cache, and with NW = 2 it compiled in 11 s and read
/// K/V faster (1.53-1.68 against 1.31-1.47 GB/s at skv = 8192, alternating runs): fewer
/// windows per dispatch cost more dispatches, but the smaller body spills less.
pub const DECODE_UNROLLED_REP_D: u32 = 1024;

/// The Q window of the decode kernel in vec4s: all of Q where one uniform binding of
/// `max_binding` bytes holds it, else as much as it holds, plus the alignment slack, so
/// that one dispatch serves the heads of several slots; `None` where not even one KV head's
/// `rep` query rows fit.
fn decode_q_vec4s(
    shape: &AttentionShape,
    dtype: DType,
    align: u64,
    max_binding: u64,
) -> Option<u64> {
    let rows = |n: u64| (align.max(16) - 16 + n * shape.d as u64 * dtype.size()).div_ceil(16);
    let one = rows((shape.hq / shape.hkv) as u64);
    let all = rows(shape.b as u64 * shape.hq as u64);
    (one * 16 <= max_binding).then(|| all.min(max_binding / 16).max(one))
}

/// Why the decode kernels do not take `shape`, if it has more than one query row.
fn require_single_query(shape: &AttentionShape) -> Result<(), PrepareError> {
    if shape.sq != 1 {
        return Err(PrepareError::Unsupported(format!(
            "the decode kernel is for sq=1 (this shape has sq={})",
            shape.sq
        )));
    }
    Ok(())
}

/// The query heads per KV head of `shape`, or why the lavapipe decode kernels do not take
/// it.
fn decode_rep(gpu: &Gpu, shape: &AttentionShape) -> Result<u32, PrepareError> {
    let rep = shape.hq / shape.hkv;
    require_single_query(shape)?;
    if rep * shape.d > DECODE_MAX_REP_D {
        return Err(PrepareError::Unsupported(format!(
            "{rep} query heads per KV head at d={} exceed the decode kernel's rep·d <= {DECODE_MAX_REP_D}",
            shape.d
        )));
    }
    require_subgroups(gpu, 8, "combines the lanes' keys with subgroup reductions")?;
    Ok(rep)
}

/// What both decode kernels write to and what follows them: the uniform block, the
/// per-chunk partial outputs and statistics, the output and the merge pass between them.
struct Partials {
    uniforms: wgpu::Buffer,
    part_o: wgpu::Buffer,
    part_ml: wgpu::Buffer,
    out: wgpu::Buffer,
    merge: Dispatch,
    dtype: DType,
    out_len: u64,
}

impl Partials {
    /// For `nsplit` chunks of `chunk` keys per KV head; causal queries see keys
    /// 0 ..= `shift`.
    fn new(
        gpu: &Gpu,
        shape: &AttentionShape,
        dtype: DType,
        shift: i32,
        nsplit: u32,
        chunk: u32,
        label: &str,
    ) -> Result<Self, PrepareError> {
        let rows = shape.b as u64 * shape.hq as u64;
        let out_len = rows * shape.d as u64;
        let part_o_bytes = rows * nsplit as u64 * shape.d as u64 * 4;
        check_buffer(gpu, "the partial outputs", part_o_bytes)?;
        let merge_groups = grid_1d(out_len / 4);
        check_workgroups(gpu, merge_groups)?;
        let params = FlashParams {
            b: shape.b,
            hq: shape.hq,
            hkv: shape.hkv,
            sq: 1,
            skv: shape.skv,
            rep: shape.hq / shape.hkv,
            causal: shape.causal as u32,
            nsplit,
            shift,
            chunk,
            scale_log2e: ((1.0 / (shape.d as f64).sqrt()) * LOG2_E) as f32,
            _pad: 0,
        };
        let merge = compile(
            gpu,
            &format!("{label} merge"),
            &merge_source(shape.d, dtype),
            "main",
        )?;
        let uniforms = uniform_buffer(gpu, "attention params", bytemuck::bytes_of(&params));
        let part_o = scratch(gpu, "attention partial o", part_o_bytes);
        let part_ml = scratch(gpu, "attention partial m, l", rows * nsplit as u64 * 8);
        let out = output_buffer(gpu, "O", dtype, out_len);
        let bind_group = bind(gpu, &merge, &[&uniforms, &part_o, &part_ml, &out]);
        let merge = Dispatch::new(merge, bind_group, merge_groups);
        Ok(Partials {
            uniforms,
            part_o,
            part_ml,
            out,
            merge,
            dtype,
            out_len,
        })
    }

    /// The program: the kernel's `dispatches`, then the merge; `keep` holds the kernel's
    /// own buffers alive.
    fn program(self, mut dispatches: Vec<Dispatch>, mut keep: Vec<wgpu::Buffer>) -> Program {
        dispatches.push(self.merge);
        keep.extend([self.uniforms, self.part_o, self.part_ml]);
        Program::new(dispatches, self.out, self.dtype, self.out_len, keep)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn prepare_decode(
    gpu: &Gpu,
    shape: &AttentionShape,
    dtype: DType,
    inputs: &AttentionInputs,
    shift: i32,
    tk: u32,
    subs: u32,
    label: &str,
) -> Result<Program, PrepareError> {
    let variant = AttentionVariant::Decode { tk, subs };
    let rep = decode_rep(gpu, shape)?;
    let limits = gpu.limits();
    let align = (limits.min_uniform_buffer_offset_alignment as u64).max(16);
    let plan = variant
        .window_plan(shape, dtype, limits.max_uniform_buffer_binding_size, align)
        .ok_or_else(|| {
            PrepareError::Unsupported(format!(
                "a {}-byte uniform window cannot hold a chunk of d={} keys",
                limits.max_uniform_buffer_binding_size, shape.d
            ))
        })?;
    let Some(q_vec4s) = decode_q_vec4s(shape, dtype, align, limits.max_uniform_buffer_binding_size)
    else {
        return Err(PrepareError::Unsupported(format!(
            "{rep} query rows of d={} do not fit one uniform window",
            shape.d
        )));
    };
    let workgroups = variant.workgroups(shape, plan.subs);
    check_workgroups(gpu, workgroups)?;
    let nsplit = plan.windows * plan.subs;
    let partials = Partials::new(
        gpu,
        shape,
        dtype,
        shift,
        nsplit,
        plan.keys / plan.subs,
        label,
    )?;
    // Window pairs per dispatch: as many as the per-stage uniform limit allows beside
    // Params, the window table and Q, at most DECODE_MAX_WINDOWS, and fewer where the
    // unrolled window bodies would pass DECODE_UNROLLED_REP_D.
    let nw = ((limits
        .max_uniform_buffers_per_shader_stage
        .saturating_sub(3))
        / 2)
    .min(DECODE_MAX_WINDOWS)
    .min((DECODE_UNROLLED_REP_D / (rep * shape.d)).max(1))
    .min(plan.windows.saturating_mul(shape.b * shape.hkv));
    if nw == 0 {
        return Err(PrepareError::Unsupported(format!(
            "needs 5 uniform buffers per shader stage (adapter: {})",
            limits.max_uniform_buffers_per_shader_stage
        )));
    }
    let source = decode_source(
        shape.d,
        dtype,
        rep,
        tk,
        q_vec4s as u32,
        (plan.window_bytes / 16) as u32,
        nw,
    );
    let main = compile(gpu, label, &source, "main")?;
    // Padded so a whole window past the last row stays in bounds.
    let q = uniform_readable(gpu, "Q", inputs.q.bytes(), q_vec4s * 16);
    let (ks, vs) = kv_buffers(gpu, shape, dtype, inputs, Some(plan.window_bytes));

    // One table entry per dispatch: nw slots of (k0, keys, kv_off, split0), then nw of
    // (batch, g, q_off, 0). A dispatch takes the next nw windows in (batch, g, window)
    // order, across heads, as long as their query rows fit its Q window (which only binds
    // where uniform bindings are small: nw heads' rows take at most 24 KiB under the caps).
    let table_bytes = 32 * nw as u64;
    let entry = table_bytes.next_multiple_of(align);
    let row_bytes = shape.d as u64 * dtype.size();
    let q_rows_bytes = rep as u64 * row_bytes;
    // Every window of every KV head: its slot words, head, first query row's byte offset
    // in Q and K/V binding start.
    struct Slot {
        words: [u32; 4],
        batch: u32,
        g: u32,
        q_first: u64,
        start: u64,
    }
    let mut all: Vec<Slot> = Vec::new();
    for batch in 0..shape.b {
        for g in 0..shape.hkv {
            let q_first = (batch as u64 * shape.hq as u64 + (g * rep) as u64) * row_bytes;
            for wi in 0..plan.windows {
                let k0 = wi * plan.keys;
                let first = ((batch as u64 * shape.hkv as u64 + g as u64) * shape.skv as u64
                    + k0 as u64)
                    * row_bytes;
                let start = first / align * align;
                all.push(Slot {
                    words: [
                        k0,
                        plan.keys.min(shape.skv - k0),
                        ((first - start) / 16) as u32,
                        wi * plan.subs,
                    ],
                    batch,
                    g,
                    q_first,
                    start,
                });
            }
        }
    }
    let mut table: Vec<u8> = Vec::new();
    // Per dispatch: table offset, Q window start, K/V window starts of the used slots.
    let mut plans: Vec<(u64, u64, Vec<u64>)> = Vec::new();
    let mut rest = &all[..];
    while let Some(first) = rest.first() {
        let q_start = first.q_first / align * align;
        let fits = |s: &Slot| s.q_first + q_rows_bytes <= q_start + q_vec4s * 16;
        let used = rest
            .iter()
            .take(nw as usize)
            .take_while(|s| fits(s))
            .count();
        let (group, later) = rest.split_at(used);
        let mut words = vec![0u32; 8 * nw as usize];
        for (i, s) in group.iter().enumerate() {
            words[4 * i..4 * i + 4].copy_from_slice(&s.words);
            let q_off = ((s.q_first - q_start) / 16) as u32;
            let head = 4 * (nw as usize + i);
            words[head..head + 4].copy_from_slice(&[s.batch, s.g, q_off, 0]);
        }
        plans.push((
            table.len() as u64,
            q_start,
            group.iter().map(|s| s.start).collect(),
        ));
        table.extend_from_slice(bytemuck::cast_slice(&words));
        table.resize((table.len() as u64).next_multiple_of(entry) as usize, 0);
        rest = later;
    }
    let windows = uniform_buffer(gpu, "attention windows", &table);
    let mut dispatches = Vec::with_capacity(plans.len() + 1);
    for (table_at, q_start, starts) in plans {
        // One bind group per copy of K and V (see kv_copies).
        let bind_groups = ks
            .iter()
            .zip(&vs)
            .map(|(k, v)| {
                let mut entries = vec![
                    whole(&partials.uniforms),
                    range(&windows, table_at, table_bytes),
                    range(&q, q_start, q_vec4s * 16),
                ];
                for i in 0..nw as usize {
                    // Unused slots repeat the first window; no workgroup reads them.
                    let start = starts.get(i).copied().unwrap_or(starts[0]);
                    entries.push(range(k, start, plan.window_bytes));
                    entries.push(range(v, start, plan.window_bytes));
                }
                entries.push(whole(&partials.part_o));
                entries.push(whole(&partials.part_ml));
                bind_entries(gpu, &main, &entries)
            })
            .collect();
        let groups = [workgroups[0], starts.len() as u32, 1];
        dispatches.push(Dispatch::cycling(main.clone(), bind_groups, groups));
    }
    let mut keep = vec![windows, q];
    keep.extend(ks.into_iter().chain(vs));
    Ok(partials.program(dispatches, keep))
}

/// The bytes of one K/V texel: rgba32uint.
const KV_TEXEL_BYTES: u32 = 16;

/// K's and V's texel layout for `shape` in `dtype`: one row of D·size/16 texels per key.
pub fn decode_texture_layout(
    shape: &AttentionShape,
    dtype: DType,
    max_texture: u32,
) -> Result<TexelLayout, PrepareError> {
    let rows = shape.b as u64 * shape.hkv as u64 * shape.skv as u64;
    let rows = u32::try_from(rows).map_err(|_| {
        PrepareError::Unsupported(format!(
            "{rows} K/V rows do not fit a texture's 32-bit rows"
        ))
    })?;
    let width = (shape.d as u64 * dtype.size() / KV_TEXEL_BYTES as u64) as u32;
    TexelLayout::wrapped("K and V", width, rows, max_texture)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn prepare_decode_texture(
    gpu: &Gpu,
    shape: &AttentionShape,
    dtype: DType,
    inputs: &AttentionInputs,
    shift: i32,
    tk: u32,
    chunk: u32,
    split_d: bool,
    label: &str,
) -> Result<Program, PrepareError> {
    let variant = AttentionVariant::DecodeTexture { tk, chunk, split_d };
    let rep = decode_rep(gpu, shape)?;
    let max_texture = gpu.limits().max_texture_dimension_2d;
    let layout = decode_texture_layout(shape, dtype, max_texture)?;
    let q_layout = TexelLayout::new("Q", layout.width, shape.b * shape.hq, max_texture)?;
    let workgroups = variant.workgroups(shape, 1);
    check_workgroups(gpu, workgroups)?;
    let nsplit = variant.splits(shape, dtype);
    let partials = Partials::new(gpu, shape, dtype, shift, nsplit, chunk, label)?;
    let source = decode_texture_source(shape.d, dtype, rep, tk, split_d, &q_layout, &layout);
    let main = compile(gpu, label, &source, "main")?;
    let texture = |name: &str, layout: &TexelLayout, tensor: &HostTensor| {
        let t = layout.texture(
            gpu,
            name,
            wgpu::TextureFormat::Rgba32Uint,
            wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
        );
        layout.write(gpu, &t, tensor.bytes(), KV_TEXEL_BYTES);
        t.create_view(&wgpu::TextureViewDescriptor::default())
    };
    let q = texture("Q texels", &q_layout, &inputs.q);
    // Copies of K and V, one pair per execution (see kv_copies).
    let copies = kv_copies(shape, dtype);
    let kv = |name: &str, tensor: &HostTensor| -> Vec<wgpu::TextureView> {
        super::weights::texture_copies(
            gpu,
            &layout,
            name,
            wgpu::TextureFormat::Rgba32Uint,
            wgpu::TextureUsages::STORAGE_BINDING,
            tensor.bytes(),
            KV_TEXEL_BYTES,
            copies,
        )
        .iter()
        .map(|t| t.create_view(&wgpu::TextureViewDescriptor::default()))
        .collect()
    };
    let (ks, vs) = (kv("K texels", &inputs.k), kv("V texels", &inputs.v));
    let bind_groups = ks
        .iter()
        .zip(&vs)
        .map(|(k, v)| {
            let resources = vec![
                partials.uniforms.as_entire_binding(),
                wgpu::BindingResource::TextureView(&q),
                wgpu::BindingResource::TextureView(k),
                wgpu::BindingResource::TextureView(v),
                partials.part_o.as_entire_binding(),
                partials.part_ml.as_entire_binding(),
            ];
            bind_resources(gpu, &main, Some(label), resources)
        })
        .collect();
    let main = Dispatch::cycling(main, bind_groups, workgroups);
    Ok(partials.program(vec![main], Vec::new()))
}

/// The WGSL of `decode_coop` for head dim `d` in `dtype`, `wg` lanes, `chunk` keys a
/// workgroup, `key_lanes` lanes scoring each key (1, or 8 with subgroup shuffles) and
/// `heads` query heads a workgroup (1, or all those of a KV head).
pub fn decode_coop_source(
    d: u32,
    dtype: DType,
    (wg, chunk, key_lanes): (u32, u32, u32),
    heads: u32,
) -> String {
    let units = d * dtype.size() as u32 / 16;
    assert!(wg.is_power_of_two() && chunk.is_multiple_of(wg) && units <= wg);
    assert!(key_lanes <= wg, "a step scores wg / key_lanes keys");
    assert!(
        (d * dtype.size() as u32).is_multiple_of(16),
        "whole 16-byte units a row"
    );
    let (unpack, vec4s) = match dtype {
        DType::F16 => (
            format!(
                "    {}\n    return array<vec4<f32>, NV>(x0, x1);",
                unpack_halves("x")
            ),
            2,
        ),
        DType::F32 => (
            "    return array<vec4<f32>, NV>(bitcast<vec4<f32>>(xu));".to_string(),
            1,
        ),
    };
    let reduce = match key_lanes {
        1 => String::new(),
        8 => ["4u", "2u", "1u"]
            .map(|x| format!("            part[r] += subgroupShuffleXor(part[r], {x});\n"))
            .concat(),
        _ => panic!("key_lanes is 1 or 8"),
    };
    render(
        DECODE_COOP,
        &[
            ("PARAMS", FLASH_PARAMS.into()),
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().to_string()),
            ("WG", wg.to_string()),
            ("CHUNK", chunk.to_string()),
            ("S", key_lanes.to_string()),
            ("U", units.to_string()),
            ("NV", vec4s.to_string()),
            ("D4", (d / 4).to_string()),
            ("HEADS", heads.to_string()),
            ("UNPACK", unpack),
            ("REDUCE", reduce.trim_end().to_string()),
        ],
    )
}

/// Build `decode_coop`: K and V in storage buffers (copies cycled, see kv_copies), one
/// dispatch over every head and chunk, then the merge.
pub(super) fn prepare_decode_coop(
    gpu: &Gpu,
    shape: &AttentionShape,
    dtype: DType,
    inputs: &AttentionInputs,
    shift: i32,
    variant: AttentionVariant,
    label: &str,
) -> Result<Program, PrepareError> {
    let AttentionVariant::DecodeCoop {
        wg,
        chunk,
        key_lanes,
        share_kv,
    } = variant
    else {
        unreachable!("prepare_decode_coop is for decode_coop variants");
    };
    if key_lanes > 1 {
        require_subgroups(gpu, key_lanes, "adds each key's parts by subgroup shuffles")?;
    }
    require_single_query(shape)?;
    let units = shape.d * dtype.size() as u32 / 16;
    if units > wg {
        return Err(PrepareError::Unsupported(format!(
            "a key's row is {units} 16-byte units at d={} in {dtype}, more than the workgroup's {wg} lanes that load a unit each",
            shape.d
        )));
    }
    let heads = variant.heads_per_workgroup(shape);
    if share_kv && heads == 1 {
        return Err(PrepareError::Unsupported(
            "shares a KV head among its query heads, and this shape has one query head per KV head (hq = hkv): the decode_coop variant without `g_` does the same work".into(),
        ));
    }
    let workgroups = variant.workgroups(shape, 1);
    check_workgroups(gpu, workgroups)?;
    let nsplit = variant.splits(shape, dtype);
    let partials = Partials::new(gpu, shape, dtype, shift, nsplit, chunk, label)?;
    let source = decode_coop_source(shape.d, dtype, (wg, chunk, key_lanes), heads);
    let main = compile(gpu, label, &source, "main")?;
    let q = storage_buffer(gpu, "Q", inputs.q.bytes(), false);
    let (ks, vs) = kv_buffers(gpu, shape, dtype, inputs, None);
    let bind_groups = ks
        .iter()
        .zip(&vs)
        .map(|(k, v)| {
            bind(
                gpu,
                &main,
                &[
                    &partials.uniforms,
                    &q,
                    k,
                    v,
                    &partials.part_o,
                    &partials.part_ml,
                ],
            )
        })
        .collect();
    let main = Dispatch::cycling(main, bind_groups, workgroups);
    let mut keep = vec![q];
    keep.extend(ks.into_iter().chain(vs));
    Ok(partials.program(vec![main], keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(spec: &str) -> AttentionShape {
        spec.parse().unwrap()
    }

    /// The decode kernels parse and validate with naga for every head dim, dtype and GQA
    /// ratio they take, the texture kernel with plain and wrapped K/V layouts.
    #[test]
    fn every_decode_source_validates() {
        let validate = crate::kernels::validate_wgsl;
        for dtype in [DType::F32, DType::F16] {
            for d in AttentionShape::HEAD_DIMS {
                for (wg, chunk) in [(128, 128), (128, 512), (64, 64), (32, 64)] {
                    for key_lanes in [1, 8] {
                        for heads in [1, 4] {
                            if d * dtype.size() as u32 / 16 <= wg {
                                let tile = (wg, chunk, key_lanes);
                                let src = decode_coop_source(d, dtype, tile, heads);
                                validate(
                                    &format!("decode_coop d={d} {dtype} w{wg} heads={heads}"),
                                    &src,
                                );
                            }
                        }
                    }
                }
                for rep in [1, 4] {
                    if rep * d > DECODE_MAX_REP_D {
                        continue;
                    }
                    // Two window slots exercise the switch (a case and the default).
                    let src = decode_source(d, dtype, rep, 2, 64, 4096, 2);
                    validate(&format!("decode rep={rep} d={d} {dtype}"), &src);
                    for skv in [100, 5000] {
                        let s = shape(&format!("b=1,hq={},hkv=4,sq=1,skv={skv},d={d}", 4 * rep));
                        let kv = decode_texture_layout(&s, dtype, 16384).unwrap();
                        assert_eq!(kv.wrap > 1, skv == 5000);
                        let q = TexelLayout::new("Q", kv.width, 4 * rep, 16384).unwrap();
                        for (tk, split_d) in [(1, false), (2, false), (1, true)] {
                            let src = decode_texture_source(d, dtype, rep, tk, split_d, &q, &kv);
                            validate(
                                &format!("decode_stex rep={rep} d={d} skv={skv} {dtype}"),
                                &src,
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn decode_textures_hold_one_key_a_row_and_wrap_tall_caches() {
        // Llama-3-8B's heads at skv = 8192: 65536 keys of 32 f32 texels (16 in f16), 4 keys
        // to a texture row, in memory order.
        let s = shape("b=1,hq=32,hkv=8,sq=1,skv=8192,d=128");
        let l = decode_texture_layout(&s, DType::F32, 16384).unwrap();
        assert_eq!((l.width, l.height, l.wrap), (32, 65536, 4));
        assert_eq!(l.size(), (128, 16384));
        assert!(!l.folded());
        let l = decode_texture_layout(&s, DType::F16, 16384).unwrap();
        assert_eq!((l.width, l.wrap), (16, 4));
        let short = shape("b=1,hq=12,hkv=12,sq=1,skv=1000,d=64");
        assert_eq!(
            decode_texture_layout(&short, DType::F32, 16384)
                .unwrap()
                .wrap,
            1
        );
        // More keys a row than a texture row holds.
        let huge = shape("b=64,hq=32,hkv=8,sq=1,skv=32768,d=128");
        assert!(decode_texture_layout(&huge, DType::F32, 16384).is_err());
    }
}
