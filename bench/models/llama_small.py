"""A small Llama-architecture model in plain PyTorch, and its GGUF export.

The layout is chosen so that the weights go into GGUF unchanged:
  * RoPE rotates adjacent pairs (x[2i], x[2i+1]) -- llama.cpp's "normal" rope for arch llama --
    so no Q/K row permutation is needed (HF checkpoints need one because they rotate halves);
  * query head h reads KV head h // (n_heads / n_kv_heads), as ggml's broadcasting matmul does;
  * RMSNorm, SwiGLU feed-forward, no biases, optional tied input/output embeddings.
Works on torch 1.13 (CPU dry runs here) and 2.x (the GPU machine).
"""
import json, math, os, sys
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int = 64
    ffn_dim: int = 1024
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_seq: int = 4096
    tie_embeddings: bool = True


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(cfg, device):
    inv = cfg.rope_theta ** (-torch.arange(0, cfg.head_dim, 2, device=device, dtype=torch.float64) / cfg.head_dim)
    ang = torch.arange(cfg.max_seq, device=device, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    # x: (B, H, T, D); rotate each adjacent pair
    xe, xo = x[..., 0::2].float(), x[..., 1::2].float()
    out = torch.stack((xe * cos - xo * sin, xe * sin + xo * cos), dim=-1)
    return out.flatten(-2).type_as(x)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.wq = nn.Linear(cfg.dim, q, bias=False)
        self.wk = nn.Linear(cfg.dim, kv, bias=False)
        self.wv = nn.Linear(cfg.dim, kv, bias=False)
        self.wo = nn.Linear(q, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.w_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin):
        c = self.cfg
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.wk(h).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.wv(h).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = c.n_heads // c.n_kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if hasattr(F, 'scaled_dot_product_attention'):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch 1.13
            s = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            a = s.masked_fill(mask, float('-inf')).softmax(-1) @ v
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, -1))
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.out = None if cfg.tie_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self._rope = None
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * cfg.n_layers) if name.endswith(('wo.weight', 'w_down.weight')) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx):
        T = idx.shape[1]
        if self._rope is None or self._rope[0].device != idx.device:
            self._rope = rope_tables(self.cfg, idx.device)
        cos, sin = self._rope[0][:T], self._rope[1][:T]
        x = self.embed(idx)
        for layer in self.layers:
            x = layer(x, cos, sin)
        x = self.norm(x)
        return F.linear(x, self.embed.weight if self.out is None else self.out.weight)

    def n_params(self):
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------- GGUF

def gguf_tensors(model):
    """(gguf name, fp32 numpy array in (out, in) layout, state-dict key)"""
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    rows = [('token_embd.weight', 'embed.weight'), ('output_norm.weight', 'norm.weight')]
    if not model.cfg.tie_embeddings:
        rows.append(('output.weight', 'out.weight'))
    names = {'attn_norm': 'attn_norm.weight', 'attn_q': 'wq.weight', 'attn_k': 'wk.weight', 'attn_v': 'wv.weight',
             'attn_output': 'wo.weight', 'ffn_norm': 'ffn_norm.weight', 'ffn_gate': 'w_gate.weight',
             'ffn_up': 'w_up.weight', 'ffn_down': 'w_down.weight'}
    for i in range(model.cfg.n_layers):
        rows += [(f'blk.{i}.{g}.weight', f'layers.{i}.{t}') for g, t in names.items()]
    return [(g, sd[k], k) for g, k in rows]


def export_gguf(model, sp_model_path, path, ftype, name, context_length):
    """Write the model as GGUF (ftype 'f32', 'f16' or 'q8_0': 2-D weights in that type, norms f32).
    Returns the state dict holding exactly the values the file stores (after rounding or
    quantize-dequantize), for computing PyTorch references on the shipped weights."""
    import gguf
    import sentencepiece as spm
    from gguf import quants
    cfg = model.cfg
    qtype = {'f32': gguf.GGMLQuantizationType.F32, 'f16': gguf.GGMLQuantizationType.F16,
             'q8_0': gguf.GGMLQuantizationType.Q8_0}[ftype]
    ftype_id = {'f32': gguf.LlamaFileType.ALL_F32, 'f16': gguf.LlamaFileType.MOSTLY_F16,
                'q8_0': gguf.LlamaFileType.MOSTLY_Q8_0}[ftype]
    w = gguf.GGUFWriter(path, 'llama')
    w.add_name(name)
    w.add_context_length(context_length)
    w.add_embedding_length(cfg.dim)
    w.add_block_count(cfg.n_layers)
    w.add_feed_forward_length(cfg.ffn_dim)
    w.add_head_count(cfg.n_heads)
    w.add_head_count_kv(cfg.n_kv_heads)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(ftype_id)

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    assert sp.get_piece_size() == cfg.vocab_size
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode('utf-8'))
        scores.append(sp.get_score(i))
        t = gguf.TokenType.NORMAL
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        types.append(t)
    w.add_tokenizer_model('llama')
    w.add_tokenizer_pre('default')
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    # trained with add_dummy_prefix=False, so llama.cpp must not prepend a space either
    w.add_add_space_prefix(False)

    stored = {}
    for gname, arr, key in gguf_tensors(model):
        if arr.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
            data, back = arr.astype(np.float32), arr.astype(np.float32)
            w.add_tensor(gname, data)
        elif qtype == gguf.GGMLQuantizationType.F16:
            data = arr.astype(np.float16)
            back = data.astype(np.float32)
            w.add_tensor(gname, data)
        else:
            data = quants.quantize(arr, qtype)
            back = quants.dequantize(data, qtype).reshape(arr.shape).astype(np.float32)
            w.add_tensor(gname, data, raw_dtype=qtype)
        stored[key] = torch.from_numpy(back)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored


# ---------------------------------------------------------------- references

@torch.no_grad()
def greedy(model, ids, n, eos=None):
    ids = list(ids)
    out = []
    for _ in range(n):
        logits = model(torch.tensor([ids], device=next(model.parameters()).device))[0, -1].float()
        top2 = torch.topk(logits, 2)
        t = int(top2.indices[0])
        out.append({'token': t, 'margin': float(top2.values[0] - top2.values[1])})
        ids.append(t)
        if eos is not None and t == eos:
            break
    return out


@torch.no_grad()
def sequence_nll(model, ids):
    """Sum of -log p(ids[i] | ids[:i]) for i >= 1, and the count."""
    x = torch.tensor([ids], device=next(model.parameters()).device)
    logp = model(x)[0, :-1].float().log_softmax(-1)
    nll = -logp.gather(1, x[0, 1:, None]).squeeze(1)
    return float(nll.double().sum()), len(ids) - 1


def reference(model, stored, prompt_ids, ppl_sequences, eos, n_greedy=64):
    """Greedy continuation and perplexity computed in fp32 on exactly the stored weights."""
    ref_model = Llama(model.cfg)
    ref_model.load_state_dict(stored)
    dev = next(model.parameters()).device
    ref_model = ref_model.to(dev).float().eval()
    if dev.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    g = greedy(ref_model, prompt_ids, n_greedy, eos)
    tot, cnt = 0.0, 0
    for seq in ppl_sequences:
        s, c = sequence_nll(ref_model, seq)
        tot, cnt = tot + s, cnt + c
    return {'prompt_tokens': list(prompt_ids), 'greedy_tokens': [x['token'] for x in g],
            'greedy_top1_margins': [round(x['margin'], 4) for x in g],
            'ppl_sequences': [list(s) for s in ppl_sequences], 'ppl_tokens_scored': cnt,
            'mean_nll': tot / cnt, 'perplexity': math.exp(tot / cnt)}


def cosine_lr(step_frac, base, warmup_frac=0.03, floor=0.1):
    if step_frac < warmup_frac:
        return base * step_frac / warmup_frac
    p = min(1.0, (step_frac - warmup_frac) / (1 - warmup_frac))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))
