"""Train the small arithmetic-chain model, measure it, export f16 GGUF and the PyTorch reference.

usage: python3 train.py prep --data FILE [--n N]          generate + tokenize training data (CPU, parallel)
       python3 train.py train --data FILE --out DIR [--budget-s 100] [--tiny]
Writes to DIR: squeeze-arith.gguf, reference.json, reasoning_training.json.
"""
import argparse, json, math, os, random, sys, time
from multiprocessing import Pool

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', '.carry'))
import task  # noqa: E402
from llama_small import Config, Llama, cosine_lr, export_gguf, reference  # noqa: E402

SP_PATH = os.path.join(HERE, 'tokenizer.model')
MAX_LEN = 224
ERROR_RATE = 0.2
_sp = None


def sp():
    global _sp
    if _sp is None:
        import sentencepiece as spm
        _sp = spm.SentencePieceProcessor(model_file=SP_PATH)
    return _sp


def encode_example(prompt, solution):
    # prompt and solution are tokenized separately, as at inference time (prompt in, solution out)
    s = sp()
    p = [s.bos_id()] + s.encode(prompt)
    return p, s.encode(solution) + [s.eos_id()]


def _prep_chunk(args):
    seed, n = args
    rng = random.Random(seed)
    rows = np.zeros((n, MAX_LEN), dtype=np.int16)
    starts = np.zeros(n, dtype=np.int16)
    lens = np.zeros(n, dtype=np.int16)
    i = 0
    while i < n:
        text = task.training_text(rng, ERROR_RATE)
        prompt, _, sol = text.partition(task.PROMPT_END)
        p, s = encode_example(prompt + task.PROMPT_END, sol)
        ids = p + s
        if len(ids) > MAX_LEN:
            continue
        rows[i, :len(ids)] = ids
        starts[i], lens[i] = len(p), len(ids)
        i += 1
    return rows, starts, lens


def prep(path, n, workers=None):
    t0 = time.time()
    workers = workers or os.cpu_count()
    chunk = 20000
    jobs = [(1000 + k, min(chunk, n - k * chunk)) for k in range(math.ceil(n / chunk))]
    with Pool(workers) as pool:
        parts = pool.map(_prep_chunk, jobs)
    rows = np.concatenate([p[0] for p in parts])
    starts = np.concatenate([p[1] for p in parts])
    lens = np.concatenate([p[2] for p in parts])
    np.savez(path, rows=rows, starts=starts, lens=lens)
    print(f'prep: {n} examples, mean length {lens.mean():.1f}, max {lens.max()}, {time.time() - t0:.1f}s', flush=True)


@torch.no_grad()
def generate(model, prompts, max_new, temperature, eos, seed=0):
    """Batched decoding, prompts grouped by length (the model has no padding mask)."""
    dev = next(model.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    out = [None] * len(prompts)
    by_len = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for _, idx in sorted(by_len.items()):
        x = torch.tensor([prompts[i] for i in idx], device=dev)
        done = torch.zeros(len(idx), dtype=torch.bool, device=dev)
        for _ in range(max_new):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == 'cuda'):
                logits = model(x)[:, -1].float()
            if temperature == 0:
                nxt = logits.argmax(-1)
            else:
                nxt = torch.multinomial((logits / temperature).softmax(-1), 1, generator=g).squeeze(1)
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            x = torch.cat([x, nxt[:, None]], 1)
            done |= nxt == eos
            if bool(done.all()):
                break
        for j, i in enumerate(idx):
            gen = x[j, len(prompts[i]):].tolist()
            out[i] = gen[:gen.index(eos)] if eos in gen else gen
    return out


def evaluate(model, n, temperature, seed):
    rng = random.Random(seed)
    probs, prompts = [], []
    for _ in range(n):
        start, ops = task.make_problem(rng, 4, 6)
        prompt = task.problem_line(start, ops) + '\n' + task.PROMPT_END
        probs.append(prompt)
        prompts.append([sp().bos_id()] + sp().encode(prompt))
    gens = generate(model, prompts, 200, temperature, sp().eos_id(), seed)
    right, clean = 0, 0
    samples = []
    for prompt, gen in zip(probs, gens):
        text = prompt + sp().decode(gen)
        ok, first_bad = task.check(text)
        right += ok
        clean += ok and first_bad is None
        if len(samples) < 5:
            samples.append(text)
    return {'problems': n, 'temperature': temperature, 'answer_accuracy': right / n,
            'all_steps_correct': clean / n, 'samples': samples}


def train(a):
    t_start = time.time()
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.manual_seed(0)
    d = np.load(a.data)
    rows = torch.from_numpy(d['rows'].astype(np.int64)).to(dev)
    starts = torch.from_numpy(d['starts'].astype(np.int64)).to(dev)
    lens = torch.from_numpy(d['lens'].astype(np.int64)).to(dev)
    V = sp().get_piece_size()
    if a.tiny:
        cfg = Config(vocab_size=V, dim=64, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=64, ffn_dim=128, max_seq=512)
        batch, lr = 8, 3e-3
    else:
        cfg = Config(vocab_size=V, dim=256, n_layers=4, n_heads=4, n_kv_heads=2, head_dim=64, ffn_dim=384, max_seq=512)
        batch, lr = 256, 3e-3
    model = Llama(cfg).to(dev)
    print(f'reasoning model: {model.n_params()} params, {len(rows)} examples', flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=lr, betas=(0.9, 0.98), **({'fused': True} if dev == 'cuda' else {}))
    pos = torch.arange(MAX_LEN, device=dev)
    gen = torch.Generator(device=dev).manual_seed(2)
    curve, step, run_loss, t0, next_log = [], 0, None, time.time(), 0.0
    max_steps = 5 if a.tiny else 10 ** 9
    while True:
        el = time.time() - t0
        if el >= a.budget_s or step >= max_steps:
            break
        for g in opt.param_groups:
            g['lr'] = cosine_lr(el / a.budget_s if not a.tiny else step / max_steps, lr)
        idx = torch.randint(0, len(rows), (batch,), device=dev, generator=gen)
        L = int(lens[idx].max())
        x = rows[idx, :L]
        # loss only on the solution (and the EOS after it): the problem's numbers are random
        tgt_pos = pos[1:L][None]
        mask = (tgt_pos >= starts[idx, None]) & (tgt_pos < lens[idx, None])
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == 'cuda'):
            logits = model(x[:, :-1])
        nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, V), x[:, 1:].reshape(-1), reduction='none')
        loss = (nll * mask.reshape(-1)).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0 or a.tiny:
            lv = float(loss)
            run_loss = lv if run_loss is None else 0.8 * run_loss + 0.2 * lv
        if time.time() - t0 >= next_log and run_loss is not None:
            curve.append({'step': step, 'seconds': round(time.time() - t0, 1), 'train_loss': round(run_loss, 4),
                          'lr': opt.param_groups[0]['lr']})
            print(json.dumps(curve[-1]), flush=True)
            next_log = time.time() - t0 + 10
    train_s = time.time() - t0
    model.eval()
    n_eval = 20 if a.tiny else 500
    greedy_eval = evaluate(model, n_eval, 0, seed=424242)
    sampled_eval = evaluate(model, n_eval, 1.0, seed=434343)
    print('greedy', json.dumps({k: v for k, v in greedy_eval.items() if k != 'samples'}), flush=True)
    print('sampled T=1', json.dumps({k: v for k, v in sampled_eval.items() if k != 'samples'}), flush=True)

    os.makedirs(a.out, exist_ok=True)
    gguf_path = os.path.join(a.out, 'squeeze-arith.gguf')
    stored = export_gguf(model, SP_PATH, gguf_path, 'f16', 'squeeze-arith', cfg.max_seq)
    ex = json.load(open(os.path.join(HERE, 'examples.json')))
    prompt_ids = [sp().bos_id()] + sp().encode(ex[1]['prompt'])
    rng = random.Random(777)
    seqs = []
    while sum(len(s) for s in seqs) < 2000:
        start, ops = task.make_problem(rng)
        steps, ans, _ = task.solve(start, ops)
        p, s = encode_example(task.problem_line(start, ops) + '\n' + task.PROMPT_END,
                              task.render(start, ops, steps, ans).partition(task.PROMPT_END)[2])
        seqs.append(p + s)
    ref = reference(model, stored, prompt_ids, seqs, eos=sp().eos_id(), n_greedy=64)
    ref.update({'model': 'squeeze-arith.gguf', 'weights': 'f16 (as stored)', 'compute': 'fp32',
                'ppl_text': f'{len(seqs)} fresh problems with correct solutions, each its own sequence [BOS] ... [EOS]',
                'prompt_text': 'examples.json[1].prompt',
                'greedy_text': sp().decode([t for t in ref['greedy_tokens'] if t != sp().eos_id()])})
    json.dump(ref, open(os.path.join(a.out, 'reference.json'), 'w'))
    info = {'config': cfg.__dict__, 'params': model.n_params(), 'batch': batch, 'peak_lr': lr,
            'examples_in_pool': len(rows), 'error_rate_in_training_solutions': ERROR_RATE,
            'optimizer': 'AdamW(0.9, 0.98), wd 0.1 on matrices, grad clip 1.0, cosine to 10% over the wall-clock budget; '
                         'loss on solution tokens only',
            'steps': step, 'train_seconds': round(train_s, 1), 'curve': curve,
            'greedy_eval': greedy_eval, 'sampled_eval': sampled_eval, 'ref_perplexity': ref['perplexity'],
            'gguf_bytes': os.path.getsize(gguf_path),
            'device': torch.cuda.get_device_name() if dev == 'cuda' else 'cpu',
            'total_seconds': round(time.time() - t_start, 1)}
    json.dump(info, open(os.path.join(a.out, 'reasoning_training.json'), 'w'), indent=1)
    print(f"done: {step} steps in {train_s:.0f}s, greedy acc {greedy_eval['answer_accuracy']:.3f}, "
          f"T=1 acc {sampled_eval['answer_accuracy']:.3f}, ref ppl {ref['perplexity']:.4f}, greedy: {ref['greedy_text']!r}",
          flush=True)


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('cmd', choices=['prep', 'train'])
    ap.add_argument('--data', required=True)
    ap.add_argument('--out')
    ap.add_argument('--n', type=int, default=800000)
    ap.add_argument('--budget-s', type=float, default=100)
    ap.add_argument('--tiny', action='store_true')
    a = ap.parse_args()
    if a.cmd == 'prep':
        prep(a.data, a.n, workers=min(12, os.cpu_count()))
    else:
        train(a)
