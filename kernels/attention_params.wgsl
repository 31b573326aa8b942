// attention_params.wgsl: the uniform block of the fused attention kernels, FlashParams in
// src/kernels/attention.rs (same fields, same order). Not a kernel on its own: the host puts
// it into each fused kernel as its PARAMS field (attention_flash_row, _flash_ubo,
// _flash_merge, _decode_ubo, _decode_texture, _decode_coop), bound at group 0, binding 0.
//   b, hq, hkv, sq, skv  batch, query heads, KV heads, query and key positions
//   rep                  hq / hkv, query heads per KV head (GQA)
//   causal               1: query pos sees keys 0 ..= pos + shift
//   nsplit, chunk        split mode: the keys cut into nsplit chunks of chunk keys
//   shift                skv - sq: queries aligned to the last keys
//   scale_log2e          1/sqrt(d) · log2(e): scores in log2 units, for exp2
struct Params {
    b: u32,
    hq: u32,
    hkv: u32,
    sq: u32,
    skv: u32,
    rep: u32,
    causal: u32,
    nsplit: u32,
    shift: i32,
    chunk: u32,
    scale_log2e: f32,
    _pad: u32,
}
