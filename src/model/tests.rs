use std::path::Path;

use super::*;
use crate::catalog::table::Source;
use crate::shape::{AttentionShape, DType, MatmulShape};

fn presets() -> ModelPresets {
    ModelPresets::load_default().unwrap()
}

fn find<'a>(ops: &'a [Op], name: &str) -> &'a Op {
    ops.iter()
        .find(|o| o.name() == name)
        .unwrap_or_else(|| panic!("no op {name}"))
}

fn matmul(ops: &[Op], name: &str) -> MatmulShape {
    match find(ops, name) {
        Op::Matmul { shape, .. } => *shape,
        other => panic!("{name} is {other:?}"),
    }
}

fn attention(ops: &[Op]) -> AttentionShape {
    match find(ops, "attention") {
        Op::Attention { shape, .. } => *shape,
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_have_the_eight_presets() {
    let p = presets();
    let names: Vec<&str> = p.names().collect();
    for n in [
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.2-1b",
        "llama-3.2-3b",
        "mistral-7b",
        "qwen2.5-7b",
        "tinyllama-1.1b",
        "gpt2",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    assert_eq!(p.get("LLaMA-3.1-8B").unwrap().name, "llama-3.1-8b");
    let e = p.get("llama-3.1-8").unwrap_err();
    assert!(
        e.to_string().contains("Did you mean `llama-3.1-8b`?"),
        "{e}"
    );
    let e = p.get("qwen-2.5-7b").unwrap_err();
    assert!(e.to_string().contains("Did you mean `qwen2.5-7b`?"), "{e}");
}

#[test]
fn llama_3_1_8b_shapes_by_hand() {
    let p = presets();
    let m = p.get("llama-3.1-8b").unwrap();
    // Prefill: 2 sequences x 512 tokens = 1024 rows.
    let ops = layer_ops(
        m,
        Phase::Prefill {
            batch: 2,
            prompt_len: 512,
        },
    )
    .unwrap();
    let lin = |m, n, k| MatmulShape::new(m, n, k).transposed_b();
    assert_eq!(matmul(&ops, "q_proj"), lin(1024, 4096, 4096));
    assert_eq!(matmul(&ops, "k_proj"), lin(1024, 1024, 4096));
    assert_eq!(matmul(&ops, "v_proj"), lin(1024, 1024, 4096));
    assert_eq!(matmul(&ops, "o_proj"), lin(1024, 4096, 4096));
    assert_eq!(matmul(&ops, "gate_proj"), lin(1024, 14336, 4096));
    assert_eq!(matmul(&ops, "up_proj"), lin(1024, 14336, 4096));
    assert_eq!(matmul(&ops, "down_proj"), lin(1024, 4096, 14336));
    assert_eq!(
        attention(&ops),
        AttentionShape {
            b: 2,
            hq: 32,
            hkv: 8,
            sq: 512,
            skv: 512,
            d: 128,
            causal: true
        }
    );
    assert_eq!(
        *find(&ops, "rope"),
        Op::Elementwise {
            name: "rope",
            kind: ElementwiseKind::Rope,
            rows: 1024,
            cols: 4096 + 1024
        }
    );
    assert_eq!(
        *find(&ops, "silu_mul"),
        Op::Elementwise {
            name: "silu_mul",
            kind: ElementwiseKind::SiluMul,
            rows: 1024,
            cols: 14336
        }
    );
    let order: Vec<&str> = ops.iter().map(Op::name).collect();
    assert_eq!(
        order,
        [
            "attn_norm",
            "q_proj",
            "k_proj",
            "v_proj",
            "rope",
            "attention",
            "o_proj",
            "attn_residual",
            "mlp_norm",
            "gate_proj",
            "up_proj",
            "silu_mul",
            "down_proj",
            "mlp_residual"
        ]
    );
    assert!(matches!(
        find(&ops, "attn_norm"),
        Op::Elementwise {
            kind: ElementwiseKind::RmsNorm,
            ..
        }
    ));

    // Decode: one token for each of 4 sequences, attending to 1000 keys.
    let ops = layer_ops(
        m,
        Phase::Decode {
            batch: 4,
            context_len: 1000,
        },
    )
    .unwrap();
    assert_eq!(matmul(&ops, "q_proj"), lin(4, 4096, 4096));
    let a = attention(&ops);
    assert_eq!((a.b, a.sq, a.skv, a.causal), (4, 1, 1000, true));

    // Head: final norm over all tokens, LM head on the last token of each sequence.
    let head = head_ops(
        m,
        Phase::Prefill {
            batch: 2,
            prompt_len: 512,
        },
    )
    .unwrap();
    assert_eq!(matmul(&head, "lm_head"), lin(2, 128256, 4096));
    assert!(matches!(
        find(&head, "final_norm"),
        Op::Elementwise {
            rows: 1024,
            cols: 4096,
            ..
        }
    ));
    assert_eq!(head.len(), 2);
}

#[test]
fn gpt2_uses_layernorm_gelu_and_learned_positions() {
    let p = presets();
    let m = p.get("gpt2").unwrap();
    let phase = Phase::Prefill {
        batch: 1,
        prompt_len: 128,
    };
    let ops = layer_ops(m, phase).unwrap();
    let order: Vec<&str> = ops.iter().map(Op::name).collect();
    assert_eq!(
        order,
        [
            "attn_norm",
            "q_proj",
            "k_proj",
            "v_proj",
            "attention",
            "o_proj",
            "attn_residual",
            "mlp_norm",
            "up_proj",
            "gelu",
            "down_proj",
            "mlp_residual"
        ]
    );
    assert!(matches!(
        find(&ops, "attn_norm"),
        Op::Elementwise {
            kind: ElementwiseKind::LayerNorm,
            ..
        }
    ));
    assert_eq!(
        matmul(&ops, "up_proj"),
        MatmulShape::new(128, 3072, 768).transposed_b()
    );
    assert_eq!(attention(&ops).hkv, 12);
    let head: Vec<&str> = head_ops(m, phase).unwrap().iter().map(Op::name).collect();
    assert_eq!(head, ["position_embedding_add", "final_norm", "lm_head"]);
}

/// The FLOP total of a prefill pass against 2 x parameters x tokens + attention + LM head,
/// for every preset, with the parameters taken from the PUBLISHED count (params_billion).
///
/// Embedding parameters are excluded from the 2·P·tokens term: the embedding lookup is a
/// gather with no matmul. The LM head runs on the last token of each sequence (batch rows),
/// so it is a separate 2·V·H·batch term (for tied models it is the embedding matrix reused).
/// Tolerance 1%: params_billion has three significant figures (GPT-2's 0.124 is ±0.4%), and
/// norms, RoPE, activations and residual adds add a few FLOPs per element (<0.3%).
#[test]
fn prefill_flops_match_two_p_tokens_plus_attention() {
    let (batch, prompt) = (2u64, 256u64);
    for m in presets().all() {
        let phase = Phase::Prefill {
            batch: batch as u32,
            prompt_len: prompt as u32,
        };
        let (h, v) = (u64::from(m.hidden_size), u64::from(m.vocab_size));
        let published = m.params_billion.unwrap() * 1e9;
        let embeddings = m.embedding_params() as f64 + m.lm_head_params() as f64;
        let p_layers = published - embeddings;
        let tokens = (batch * prompt) as f64;
        // Causal attention, FlashAttention convention: 4·B·Hq·S²·D / 2 per layer.
        let attn = f64::from(m.num_layers)
            * (4 * batch
                * u64::from(m.num_attention_heads)
                * prompt
                * prompt
                * u64::from(m.head_dim)
                / 2) as f64;
        let lm_head = (2 * v * h * batch) as f64;
        let expected = 2.0 * p_layers * tokens + attn + lm_head;
        let got = pass_flops(m, phase).unwrap() as f64;
        let rel = (got - expected).abs() / expected;
        assert!(
            rel < 0.01,
            "{}: {got:.4e} vs {expected:.4e} ({:.3}%)",
            m.name,
            rel * 100.0
        );

        // Exactly: the matmul FLOPs are 2 x (modelled layer weights) x tokens + LM head.
        let mut matmul_flops = 0u64;
        for op in layer_ops(m, phase).unwrap() {
            if let Op::Matmul { shape, .. } = op {
                matmul_flops += u64::from(m.num_layers) * shape.flops();
            }
        }
        for op in head_ops(m, phase).unwrap() {
            if let Op::Matmul { shape, .. } = op {
                matmul_flops += shape.flops();
            }
        }
        let exact = 2 * u64::from(m.num_layers) * m.layer_matmul_params() * batch * prompt
            + 2 * v * h * batch;
        assert_eq!(matmul_flops, exact, "{}", m.name);
    }
}

#[test]
fn modelled_parameters_match_the_published_counts() {
    for m in presets().all() {
        let published = m.params_billion.unwrap() * 1e9;
        let rel = (m.total_params() as f64 - published).abs() / published;
        // Three significant figures in the published count, biases not modelled.
        assert!(
            rel < 0.006,
            "{}: {} vs {published} ({:.3}%)",
            m.name,
            m.total_params(),
            rel * 100.0
        );
    }
}

#[test]
fn decode_flops_by_hand() {
    // Decode is 2·P per token plus attention over the context.
    let p = presets();
    let m = p.get("llama-3.1-8b").unwrap();
    let ops = layer_ops(
        m,
        Phase::Decode {
            batch: 1,
            context_len: 2048,
        },
    )
    .unwrap();
    let attn: u64 = ops
        .iter()
        .filter(|o| o.kernel() == "attention")
        .map(Op::flops)
        .sum();
    assert_eq!(attn, 4 * 32 * 2048 * 128);
    let matmuls: u64 = ops
        .iter()
        .filter(|o| o.kernel() == "matmul")
        .map(Op::flops)
        .sum();
    assert_eq!(matmuls, 2 * m.layer_matmul_params());
}

#[test]
fn sliding_window_caps_decode_and_the_kv_cache() {
    let p = presets();
    let m = p.get("mistral-7b").unwrap();
    let ops = layer_ops(
        m,
        Phase::Decode {
            batch: 1,
            context_len: 8192,
        },
    )
    .unwrap();
    assert_eq!(attention(&ops).skv, 4096);
    assert_eq!(
        kv_cache_bytes(m, 1, 8192, DType::F16),
        kv_cache_bytes(m, 1, 4096, DType::F16)
    );
}

#[test]
fn memory_footprints_by_hand() {
    let p = presets();
    let m = p.get("llama-3.1-8b").unwrap();
    // 2 (K and V) x 32 layers x 8192 tokens x 8 heads x 128 x 2 bytes = 1 GiB.
    assert_eq!(kv_cache_bytes(m, 1, 8192, DType::F16), 1 << 30);
    assert_eq!(kv_cache_bytes(m, 2, 8192, DType::F32), 4 << 30);
    // ~8.03 B parameters at 2 bytes.
    let w = weight_bytes(m, DType::F16) as f64;
    assert!((w / 2.0 / 8.03e9 - 1.0).abs() < 0.005, "{w}");
    assert_eq!(weight_bytes(m, DType::F32), 2 * weight_bytes(m, DType::F16));
}

#[test]
fn elementwise_counts_by_hand() {
    let add = Op::Elementwise {
        name: "x",
        kind: ElementwiseKind::Add,
        rows: 10,
        cols: 4,
    };
    assert_eq!((add.flops(), add.bytes(DType::F32)), (40, 3 * 40 * 4));
    let norm = Op::Elementwise {
        name: "x",
        kind: ElementwiseKind::RmsNorm,
        rows: 10,
        cols: 4,
    };
    // 4 FLOPs per element; read x, write y, read the 4-wide weight once.
    assert_eq!((norm.flops(), norm.bytes(DType::F16)), (160, (80 + 4) * 2));
    assert_eq!(norm.shape_text(), "rows=10,cols=4");
    assert_eq!(norm.kernel(), "rmsnorm");
}

#[test]
fn phases_are_checked() {
    let p = presets();
    let m = p.get("gpt2").unwrap();
    for phase in [
        Phase::Prefill {
            batch: 0,
            prompt_len: 8,
        },
        Phase::Prefill {
            batch: 1,
            prompt_len: 0,
        },
        Phase::Decode {
            batch: 1,
            context_len: 1025,
        },
        Phase::Prefill {
            batch: 1,
            prompt_len: 2000,
        },
    ] {
        let e = layer_ops(m, phase).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_BAD_INPUT, "{e}");
    }
    let big = p.get("llama-3.1-8b").unwrap();
    let e = head_ops(
        big,
        Phase::Prefill {
            batch: u32::MAX,
            prompt_len: 131072,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
    assert_eq!(
        Phase::Prefill {
            batch: 3,
            prompt_len: 5
        }
        .tokens_per_pass(),
        15
    );
    assert_eq!(
        Phase::Decode {
            batch: 3,
            context_len: 5
        }
        .tokens_per_pass(),
        3
    );
    assert_eq!("Decode".parse::<PhaseKind>().unwrap(), PhaseKind::Decode);
    assert!("train".parse::<PhaseKind>().is_err());
}

const HEADER: &str = "model,family,hidden_size,num_layers,num_attention_heads,num_kv_heads,head_dim,intermediate_size,mlp,norm,position_embedding,max_context,sliding_window,vocab_size,tied_embeddings,params_billion,source\n";
const TINY: &str = "tiny,llama,64,2,4,2,64,128,swiglu,rmsnorm,rope,512,,1000,true,,test\n";

fn parse_user(text: &str, replace: bool) -> crate::error::Result<ModelPresets> {
    ModelPresets::from_sources(
        Some(Source {
            path: Path::new("user/models.csv"),
            bytes: text.as_bytes(),
        }),
        replace,
    )
}

#[test]
fn user_model_files_extend_and_are_strict() {
    let p = parse_user(&format!("{HEADER}{TINY}"), false).unwrap();
    assert_eq!(p.all().len(), presets().all().len() + 1);
    assert_eq!(p.get("tiny").unwrap().params_billion, None);
    let p = parse_user(&format!("{HEADER}{TINY}"), true).unwrap();
    assert_eq!(p.all().len(), 1);

    let cases = [
        (
            "other,llama,64,2,4,3,16,128,swiglu,rmsnorm,rope,512,,1000,true,,t",
            6,
            "not a multiple",
        ),
        (
            "other,llama,64,2,4,2,16,128,relu,rmsnorm,rope,512,,1000,true,,t",
            9,
            "swiglu, gelu",
        ),
        (
            "other,llama,64,2,4,2,16,128,swiglu,batchnorm,rope,512,,1000,true,,t",
            10,
            "rmsnorm, layernorm",
        ),
        (
            "other,llama,64,0,4,2,16,128,swiglu,rmsnorm,rope,512,,1000,true,,t",
            4,
            "below 1",
        ),
        (
            "other,llama,64,2,4,2,16,128,swiglu,rmsnorm,rope,512,,1000,maybe,,t",
            15,
            "true or false",
        ),
        (
            "other,llama,64,2,4,2,16,128,swiglu,rmsnorm,rope,512,,1000,true,-1,t",
            16,
            "not above 0",
        ),
        (
            "TINY,llama,64,2,4,2,16,128,swiglu,rmsnorm,rope,512,,1000,true,,t",
            1,
            "listed twice",
        ),
    ];
    for (row, column, needle) in cases {
        match parse_user(&format!("{HEADER}{TINY}{row}\n"), true) {
            Err(crate::Error::BadFile {
                line,
                column: c,
                what,
                fix,
                ..
            }) => {
                assert_eq!((line, c), (3, column), "{needle}: {what}");
                assert!(
                    format!("{what}. {fix}").contains(needle),
                    "{needle}: {what}. {fix}"
                );
            }
            other => panic!("{needle}: {other:?}"),
        }
    }
    match parse_user(&HEADER.replace("norm,", "normalization,"), true) {
        Err(crate::Error::BadFile {
            line: 1,
            column: 10,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
