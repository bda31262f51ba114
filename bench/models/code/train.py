"""Train the ~20M-parameter code model, export it as Q8_0 GGUF and write the PyTorch reference.

usage: python3 train.py --out DIR [--budget-s 240] [--tiny]
Reads ../.carry/code/{train,heldout}.u16.xz and meta.json (from prepare.py) and tokenizer.model.
Writes to DIR: squeeze-code-20m.gguf, reference.json, training.json (config, loss curve, timings).
--tiny: a small model and a few steps on CPU, to check the pipeline before spending device time.
"""
import argparse, json, lzma, math, os, sys, time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', '.carry'))  # gguf-py copied from the bundled llama.cpp
from llama_small import Config, Llama, cosine_lr, export_gguf, reference  # noqa: E402

CARRY = os.path.join(HERE, '..', '.carry', 'code')


def load(split):
    with lzma.open(os.path.join(CARRY, f'{split}.u16.xz')) as f:
        return np.frombuffer(f.read(), dtype=np.uint16).astype(np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--budget-s', type=float, default=240)
    ap.add_argument('--tiny', action='store_true')
    ap.add_argument('--name', default='squeeze-code-20m')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    t_start = time.time()
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.manual_seed(0)
    meta = json.load(open(os.path.join(CARRY, 'meta.json')))
    train, held = load('train'), load('heldout')
    V = meta['vocab_size']
    if a.tiny:
        cfg = Config(vocab_size=V, dim=128, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=64, ffn_dim=256, max_seq=4096)
        seq, batch, lr = 256, 2, 1e-3
    else:
        cfg = Config(vocab_size=V, dim=512, n_layers=6, n_heads=8, n_kv_heads=2, head_dim=64, ffn_dim=1280, max_seq=4096)
        seq, batch, lr = 4096, 16, 2e-3
    model = Llama(cfg).to(dev)
    n_params = model.n_params()
    print(f'device {dev} {torch.cuda.get_device_name() if dev == "cuda" else ""}; params {n_params}; '
          f'train tokens {len(train)}; held-out tokens {len(held)}', flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt_kw = {'fused': True} if dev == 'cuda' else {}
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8, **opt_kw)
    if dev == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
    train_t = torch.from_numpy(train).to(dev)
    held_t = torch.from_numpy(held).to(dev)
    # fixed held-out windows for the curve: non-overlapping, starting at the stream's beginning
    n_eval = max(1, min(8, (len(held) - 1) // (seq + 1)))
    eval_x = torch.stack([held_t[i * seq: i * seq + seq + 1] for i in range(n_eval)])
    gen = torch.Generator(device='cpu').manual_seed(1)

    def held_loss():
        model.eval()
        with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == 'cuda'):
            tot = 0.0
            for i in range(n_eval):
                x = eval_x[i:i + 1]
                logits = model(x[:, :-1])
                tot += float(torch.nn.functional.cross_entropy(logits.float().view(-1, V), x[:, 1:].reshape(-1)))
        model.train()
        return tot / n_eval

    curve, step, tokens, run_loss = [], 0, 0, None
    max_steps = 6 if a.tiny else 10 ** 9
    t0 = time.time()
    next_eval = 0.0
    while True:
        el = time.time() - t0
        if el >= a.budget_s or step >= max_steps:
            break
        frac = el / a.budget_s if not a.tiny else step / max_steps
        for g in opt.param_groups:
            g['lr'] = cosine_lr(frac, lr)
        starts = torch.randint(0, len(train) - seq - 1, (batch,), generator=gen)
        x = torch.stack([train_t[s: s + seq + 1] for s in starts.tolist()])
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == 'cuda'):
            logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += batch * seq
        lv = float(loss) if step % 10 == 0 or a.tiny or step < 10 else None
        if lv is not None:
            run_loss = lv if run_loss is None else 0.9 * run_loss + 0.1 * lv
        el = time.time() - t0
        if el >= next_eval or a.tiny:
            hl = held_loss()
            curve.append({'step': step, 'seconds': round(el, 1), 'tokens': tokens, 'train_loss': round(run_loss, 4),
                          'heldout_loss': round(hl, 4), 'lr': opt.param_groups[0]['lr']})
            print(json.dumps(curve[-1]), flush=True)
            next_eval = el + 20
    train_s = time.time() - t0
    final_held = held_loss()
    curve.append({'step': step, 'seconds': round(train_s, 1), 'tokens': tokens, 'train_loss': round(run_loss, 4),
                  'heldout_loss': round(final_held, 4), 'lr': opt.param_groups[0]['lr']})
    print('final', json.dumps(curve[-1]), flush=True)

    # full held-out set (all 10 packages) in 4096-token windows, bf16 as trained
    model.eval()
    with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == 'cuda'):
        tot, cnt = 0.0, 0
        for s in range(0, len(held) - 1, seq):
            x = held_t[s: s + seq + 1][None]
            if x.shape[1] < 2:
                break
            lg = model(x[:, :-1]).float()
            tot += float(torch.nn.functional.cross_entropy(lg.view(-1, V), x[0, 1:], reduction='sum'))
            cnt += x.shape[1] - 1
    full_held = tot / cnt

    gguf_path = os.path.join(a.out, a.name + '.gguf')
    stored = export_gguf(model, os.path.join(HERE, 'tokenizer.model'), gguf_path, 'q8_0', a.name, cfg.max_seq)
    # perplexity text: the first 2048 tokens (BOS included) of the first held-out package;
    # greedy prompt: the first 160 tokens of the second one
    docs = meta['heldout']['docs']
    ppl_seq = held[docs[0]['start']: docs[0]['start'] + (256 if a.tiny else 2048)].tolist()
    prompt = held[docs[1]['start']: docs[1]['start'] + 160].tolist()
    ref = reference(model, stored, prompt, [ppl_seq], eos=2, n_greedy=64)
    ref.update({'model': os.path.basename(gguf_path), 'weights': 'Q8_0, dequantized with gguf-py', 'compute': 'fp32',
                'ppl_text': f"{docs[0]['name']}@{docs[0]['version']} (held out), first {len(ppl_seq)} tokens incl. BOS",
                'prompt_text': f"{docs[1]['name']}@{docs[1]['version']} (held out), first {len(prompt)} tokens incl. BOS"})
    json.dump(ref, open(os.path.join(a.out, 'reference.json'), 'w'))
    info = {'config': cfg.__dict__, 'params': n_params, 'seq_len': seq, 'batch': batch, 'peak_lr': lr,
            'optimizer': 'AdamW(0.9, 0.95), wd 0.1 on matrices, grad clip 1.0, cosine to 10% over the wall-clock budget',
            'steps': step, 'tokens_seen': tokens, 'train_seconds': round(train_s, 1),
            'epochs': tokens / len(train), 'device': torch.cuda.get_device_name() if dev == 'cuda' else 'cpu',
            'torch': torch.__version__, 'curve': curve, 'heldout_loss_full_bf16': full_held,
            'heldout_ppl_q8_ref': ref['perplexity'], 'gguf_bytes': os.path.getsize(gguf_path),
            'total_seconds': round(time.time() - t_start, 1)}
    json.dump(info, open(os.path.join(a.out, 'code_training.json'), 'w'), indent=1)
    print(f"done: {step} steps, {tokens} tokens, {train_s:.0f}s; held-out loss {full_held:.4f}; "
          f"Q8_0 ref ppl {ref['perplexity']:.4f}; gguf {info['gguf_bytes']} bytes", flush=True)


if __name__ == '__main__':
    main()
