//! Temporary probe (issue 6): time experimental lavapipe matmul designs. Not part of the crate.
//! Usage: matmul_probe N MODE TM TN [WX]   MODE: vec (lane owns TN vec4 columns, rgba32f B)
//! or scal (lane owns TN scalar columns at stride WX, r32f B). A comes from a storage buffer
//! at a subgroup-uniform address (rows from workgroup_id).
use priceperf::gpu::Gpu;
use priceperf::kernels::{compile, storage_buffer, uniform_buffer, Dispatch, Program};
use priceperf::measure::Timer;
use priceperf::shape::DType;
use std::fmt::Write as _;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args[1].parse().unwrap();
    let mode = args[2].clone();
    let tm: u32 = args[3].parse().unwrap();
    let tn: u32 = args[4].parse().unwrap();
    let wx: u32 = args.get(5).map_or(8, |s| s.parse().unwrap());
    let atex = mode.starts_with('t');
    let vec = mode.ends_with("vec");
    if mode == "sg" {
        return sg(n, tm, tn);
    }
    let gpu = Gpu::open(None).unwrap();
    let mut rng = priceperf::verify::Rng::new(1);
    let a: Vec<f32> = (0..n * n)
        .map(|_| (rng.below(33) as f32 - 16.0) / 8.0)
        .collect();
    let b: Vec<f32> = (0..n * n)
        .map(|_| (rng.below(33) as f32 - 16.0) / 8.0)
        .collect();

    let mut src = String::new();
    let _ = writeln!(src, "@group(0) @binding(0) var<uniform> p: vec4<u32>;");
    if atex {
        let _ = writeln!(src, "@group(0) @binding(1) var a_tex: texture_2d<f32>;");
    } else {
        let _ = writeln!(
            src,
            "@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;"
        );
    }
    let _ = writeln!(src, "@group(0) @binding(2) var b_tex: texture_2d<f32>;");
    let _ = writeln!(
        src,
        "@group(0) @binding(3) var<storage, read_write> c: array<f32>;"
    );
    let _ = writeln!(src, "@compute @workgroup_size({wx}, 1, 1)");
    let _ = writeln!(src, "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{");
    let _ = writeln!(src, "  let n = p.x; let k4 = p.x / 4u;");
    let _ = writeln!(src, "  let row0 = wid.y * {tm}u;");
    let acc_ty = if vec { "vec4<f32>" } else { "f32" };
    if vec {
        let _ = writeln!(src, "  let col4 = (wid.x * {wx}u + lid.x) * {tn}u;");
    } else {
        let _ = writeln!(src, "  let col = wid.x * {}u + lid.x;", wx * tn);
    }
    for r in 0..tm {
        for j in 0..tn {
            let _ = writeln!(src, "  var acc_{r}_{j} = {acc_ty}(0.0);");
        }
    }
    let _ = writeln!(src, "  for (var k = 0u; k < n; k += 4u) {{");
    for r in 0..tm {
        if atex {
            let _ = writeln!(
                src,
                "    let a_{r} = textureLoad(a_tex, vec2<u32>(k >> 2u, row0 + {r}u), 0);"
            );
        } else {
            let _ = writeln!(src, "    let a_{r} = a[(row0 + {r}u) * k4 + (k >> 2u)];");
        }
    }
    for i in 0..4 {
        for j in 0..tn {
            if vec {
                let _ = writeln!(
                    src,
                    "    let b_{i}_{j} = textureLoad(b_tex, vec2<u32>(col4 + {j}u, k + {i}u), 0);"
                );
            } else {
                let _ = writeln!(
                    src,
                    "    let b_{i}_{j} = textureLoad(b_tex, vec2<u32>(col + {}u, k + {i}u), 0).x;",
                    j * wx
                );
            }
        }
        let lane = ["x", "y", "z", "w"][i];
        for r in 0..tm {
            for j in 0..tn {
                let _ = writeln!(
                    src,
                    "    acc_{r}_{j} = fma({acc_ty}(a_{r}.{lane}), b_{i}_{j}, acc_{r}_{j});"
                );
            }
        }
    }
    let _ = writeln!(src, "  }}");
    for r in 0..tm {
        for j in 0..tn {
            if vec {
                for (q, lane) in ["x", "y", "z", "w"].iter().enumerate() {
                    let _ = writeln!(
                        src,
                        "  c[(row0 + {r}u) * n + (col4 + {j}u) * 4u + {q}u] = acc_{r}_{j}.{lane};"
                    );
                }
            } else {
                let _ = writeln!(
                    src,
                    "  c[(row0 + {r}u) * n + col + {}u] = acc_{r}_{j};",
                    j * wx
                );
            }
        }
    }
    let _ = writeln!(src, "}}");
    if std::env::var("SHOW").is_ok() {
        println!("{src}");
    }
    let pipeline = compile(&gpu, "probe", &src, "main").unwrap();
    let uni = uniform_buffer(&gpu, "p", bytemuck::bytes_of(&[n, n, n, 0u32]));
    let abuf = storage_buffer(&gpu, "a", bytemuck::cast_slice(&a), false);
    let cbuf = storage_buffer(&gpu, "c", &vec![0u8; (n * n * 4) as usize], true);
    let (format, width) = if vec {
        (wgpu::TextureFormat::Rgba32Float, n / 4)
    } else {
        (wgpu::TextureFormat::R32Float, n)
    };
    let size = wgpu::Extent3d {
        width,
        height: n,
        depth_or_array_layers: 1,
    };
    let tex = gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("b"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    gpu.queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture: &tex,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        bytemuck::cast_slice(&b),
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(n * 4),
            rows_per_image: Some(n),
        },
        size,
    );
    let view = tex.create_view(&Default::default());
    let asize = wgpu::Extent3d {
        width: n / 4,
        height: n,
        depth_or_array_layers: 1,
    };
    let atexture = gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("a"),
        size: asize,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    gpu.queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture: &atexture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        bytemuck::cast_slice(&a),
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(n * 4),
            rows_per_image: Some(n),
        },
        asize,
    );
    let aview = atexture.create_view(&Default::default());
    let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uni.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: if atex {
                    wgpu::BindingResource::TextureView(&aview)
                } else {
                    abuf.as_entire_binding()
                },
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::TextureView(&view),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: cbuf.as_entire_binding(),
            },
        ],
    });
    let cols_per_wg = if vec { wx * tn * 4 } else { wx * tn };
    let program = Program {
        dispatches: vec![Dispatch {
            pipeline,
            bind_group,
            workgroups: [n / cols_per_wg, n / tm, 1],
        }],
        output: cbuf,
        output_dtype: DType::F32,
        output_len: (n * n) as u64,
        _keep: vec![uni, abuf],
    };
    let timer = Timer::new(&gpu, Duration::from_secs(600));
    let out = priceperf::measure::run_and_read(&gpu, &program, Duration::from_secs(600)).unwrap();
    let got: Vec<f32> = (0..out.len()).map(|i| out.get(i) as f32).collect();
    // spot-check a few entries exactly
    let mut bad = 0;
    for &(i, j) in &[
        (0usize, 0usize),
        (1, 5),
        (n as usize - 1, n as usize - 1),
        (37, 901 % n as usize),
    ] {
        let mut s = 0f64;
        for kk in 0..n as usize {
            s += a[i * n as usize + kk] as f64 * b[kk * n as usize + j] as f64;
        }
        if (got[i * n as usize + j] as f64 - s).abs() > 1e-3 {
            bad += 1;
            println!("mismatch at {i},{j}: {} vs {s}", got[i * n as usize + j]);
        }
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(timer.time(&gpu, &program, 1).unwrap().as_secs_f64());
    }
    let flops = 2.0 * (n as f64).powi(3);
    println!(
        "{mode} tm{tm} tn{tn} wx{wx}: {:.1} ms, {:.2} GFLOP/s{}",
        best * 1e3,
        flops / best / 1e9,
        if bad > 0 { " WRONG" } else { "" }
    );
}

fn sg(n: u32, r: u32, tn: u32) {
    let noa = std::env::var("NOA").is_ok();
    let nob = std::env::var("NOB").is_ok();
    let nobc = std::env::var("NOBC").is_ok();
    let uboa = std::env::var("UBOA").is_ok();
    let ubob = std::env::var("UBOB").is_ok();
    let stor = std::env::var("STOR").is_ok();
    let nsg = 8u32;
    let mut src = String::from("@group(0) @binding(0) var<uniform> p: vec4<u32>;\n@group(0) @binding(1) var a_tex: texture_2d<f32>;\n@group(0) @binding(2) var b_tex: texture_2d<f32>;\n@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;\n@group(0) @binding(4) var<uniform> ua: array<vec4<f32>, 4096>;\n@group(0) @binding(5) var<uniform> ub: array<vec4<f32>, 4096>;\n");
    if stor {
        src = src
            .replace("texture_2d<f32>", "texture_storage_2d<rgba32float, read>")
            .replace(", 0);", ");");
    }
    let _ = writeln!(src, "@compute @workgroup_size({}, 1, 1)", 8 * nsg);
    let _ = writeln!(src, "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_id) sgi: u32) {{");
    let _ = writeln!(src, "  let n = p.x;");
    let _ = writeln!(src, "  let row0 = (wg.y * {nsg}u + sgi) * {r}u;");
    let _ = writeln!(src, "  let col4 = wg.x * {}u + lane;", 8 * tn);
    for i in 0..r {
        for j in 0..tn {
            let _ = writeln!(src, "  var acc_{i}_{j} = vec4<f32>(0.0);");
        }
    }
    let unroll = std::env::var("UNROLL").is_ok();
    let _ = writeln!(
        src,
        "  for (var k0 = 0u; k0 < n; k0 += {}u) {{",
        if unroll { 8 } else { 4 }
    );
    for half in 0..(if unroll { 2 } else { 1 }) {
        let _ = writeln!(src, "  {{ let k = k0 + {}u;", half * 4);
        for q in 0..r / 8 {
            if uboa {
                let _ = writeln!(
                    src,
                    "    let av_{q} = ua[((row0 + {}u + lane) * 256u + (k >> 2u)) & 4095u];",
                    q * 8
                );
            } else if noa {
                let _ = writeln!(src, "    let av_{q} = vec4<f32>(f32(k + lane + {q}u));");
            } else {
                let _ = writeln!(
                    src,
                    "    let av_{q} = textureLoad(a_tex, vec2<u32>(k >> 2u, row0 + {}u + lane){});",
                    q * 8,
                    if stor { "" } else { ", 0" }
                );
            }
        }
        for i in 0..4 {
            for j in 0..tn {
                if ubob {
                    let _ = writeln!(
                        src,
                        "    let b_{i}_{j} = ub[((k + {i}u) * 256u + col4 + {}u) & 4095u];",
                        j * 8
                    );
                } else if nob {
                    let _ = writeln!(
                        src,
                        "    let b_{i}_{j} = vec4<f32>(f32(k + {i}u), f32(lane), 1.0, f32({j}u));"
                    );
                } else {
                    let _ = writeln!(src, "    let b_{i}_{j} = textureLoad(b_tex, vec2<u32>(col4 + {}u, k + {i}u){});", j * 8, if stor { "" } else { ", 0" });
                }
            }
        }
        for rr in 0..r {
            if nobc {
                let _ = writeln!(src, "    let a_{rr} = av_{} + vec4<f32>({rr}.0);", rr / 8);
            } else {
                let _ = writeln!(
                    src,
                    "    let a_{rr} = subgroupBroadcast(av_{}, {}u);",
                    rr / 8,
                    rr % 8
                );
            }
            for j in 0..tn {
                for (i, lane) in ["x", "y", "z", "w"].iter().enumerate() {
                    let _ = writeln!(src, "    acc_{rr}_{j} = fma(vec4<f32>(a_{rr}.{lane}), b_{i}_{j}, acc_{rr}_{j});");
                }
            }
        }
        let _ = writeln!(src, "  }}");
    }
    let _ = writeln!(src, "  }}");
    for rr in 0..r {
        for j in 0..tn {
            let _ = writeln!(
                src,
                "  c[((row0 + {rr}u) * n) / 4u + col4 + {}u] = acc_{rr}_{j};",
                j * 8
            );
        }
    }
    let _ = writeln!(src, "}}");
    let gpu = Gpu::open(None).unwrap();
    let pipeline = compile(&gpu, "probe", &src, "main").unwrap();
    let uni = uniform_buffer(&gpu, "p", bytemuck::bytes_of(&[n, n, n, 0u32]));
    let cbuf = storage_buffer(&gpu, "c", &vec![0u8; (n * n * 4) as usize], true);
    let data: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32).collect();
    let mk = |label| {
        let size = wgpu::Extent3d {
            width: n / 4,
            height: n,
            depth_or_array_layers: 1,
        };
        let t = gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::STORAGE_BINDING
                | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        gpu.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &t,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(&data),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(n * 4),
                rows_per_image: Some(n),
            },
            size,
        );
        t.create_view(&Default::default())
    };
    let (av, bv) = (mk("a"), mk("b"));
    let layout = pipeline.get_bind_group_layout(0);
    let mut entries = vec![
        wgpu::BindGroupEntry {
            binding: 0,
            resource: uni.as_entire_binding(),
        },
        wgpu::BindGroupEntry {
            binding: 1,
            resource: wgpu::BindingResource::TextureView(&av),
        },
        wgpu::BindGroupEntry {
            binding: 2,
            resource: wgpu::BindingResource::TextureView(&bv),
        },
        wgpu::BindGroupEntry {
            binding: 3,
            resource: cbuf.as_entire_binding(),
        },
    ];
    let ubuf = uniform_buffer(&gpu, "u", &vec![1u8; 65536]);
    if uboa {
        entries.push(wgpu::BindGroupEntry {
            binding: 4,
            resource: ubuf.as_entire_binding(),
        });
    }
    if ubob {
        entries.push(wgpu::BindGroupEntry {
            binding: 5,
            resource: ubuf.as_entire_binding(),
        });
    }
    if noa || uboa {
        entries.retain(|e| e.binding != 1);
    }
    if nob || ubob {
        entries.retain(|e| e.binding != 2);
    }
    let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    });
    let program = Program {
        dispatches: vec![Dispatch {
            pipeline,
            bind_group,
            workgroups: [n / (32 * tn), n / (r * nsg), 1],
        }],
        output: cbuf,
        output_dtype: DType::F32,
        output_len: 4,
        _keep: vec![uni],
    };
    let timer = Timer::new(&gpu, Duration::from_secs(600));
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(timer.time(&gpu, &program, 1).unwrap().as_secs_f64());
    }
    println!("sg stor={stor} r{r} tn{tn} uboa={uboa} ubob={ubob} noa={noa} nob={nob} nobc={nobc}: {:.1} ms, {:.2} GFLOP/s", best * 1e3, 2.0 * (n as f64).powi(3) / best / 1e9);
}
